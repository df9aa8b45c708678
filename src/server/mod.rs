//! The HTTP server: routes, the middleware stack, health, and start-up.
//!
//! Middleware order (outermost first): request id → metrics → trace →
//! authentication → handlers. The request id is set before anything logs so
//! every line and the upstream call carry it; metrics see every status,
//! including 401s; authentication is default-deny: every path needs a key
//! unless it is listed in `auth.open_paths`.

pub mod connections;
pub mod demo;
mod idle;
pub mod memory;
pub mod poll_again;
pub mod reload;
mod write_timeout;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::proxy::ProxyState;
use crate::proxy::auth::bearer;
use crate::proxy::handlers;
use crate::telemetry::metrics::RequestLabels;

/// Builds the whole application; tests drive it in-process.
pub fn app(state: ProxyState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/embeddings", post(handlers::embeddings))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(any(handlers::passthrough))
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn_with_state(state.clone(), deadline))
        .layer(middleware::from_fn_with_state(state.clone(), shed_load))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            count_requests,
        ))
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: a policy is loaded and an upstream is configured.
async fn readyz(State(state): State<ProxyState>) -> Response {
    let policy = state.policy();
    match state.upstream_for(None) {
        Ok(_) => axum::Json(serde_json::json!({"status": "ready", "policy": policy.name, "rules": policy.rules.len()})).into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, axum::Json(serde_json::json!({"status": "no default upstream"}))).into_response(),
    }
}

/// Prometheus exposition.
async fn metrics(State(state): State<ProxyState>) -> Response {
    let (stats, bytes) = state.policies().cache_totals();
    state
        .metrics
        .set_detection_cache(stats.hits, stats.misses, bytes);
    let mut response = state.metrics.encode().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// Default-deny authentication with proxy API keys (off when none are configured).
async fn authenticate(
    State(state): State<ProxyState>,
    mut request: Request,
    next: Next,
) -> Response {
    if !state.keys.enabled()
        || state
            .config
            .auth
            .open_paths
            .iter()
            .any(|p| p == request.uri().path())
    {
        return next.run(request).await;
    }
    let identity = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .and_then(|token| state.keys.identify(token))
        .cloned();
    match identity {
        Some(identity) => {
            request.extensions_mut().insert(identity);
            next.run(request).await
        }
        None => ApiError::Unauthorized.into_response(),
    }
}

/// Sheds load beyond `max_concurrent_requests` with a 503 and `Retry-After`
/// (health and metrics are never shed). The permit is held until the
/// response head is ready: scanning and the upstream wait are bounded.
async fn shed_load(State(state): State<ProxyState>, request: Request, next: Next) -> Response {
    let Some(semaphore) = state.concurrency.clone() else {
        return next.run(request).await;
    };
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return next.run(request).await;
    }
    match semaphore.try_acquire_owned() {
        Ok(permit) => {
            let response = next.run(request).await;
            drop(permit);
            response
        }
        Err(_) => ApiError::Overloaded.into_response(),
    }
}

/// Bounds each request's time until its response head with
/// `request_timeout_secs` (OpenAI-shaped 504 after). A non-streamed answer is
/// read whole before its head is sent, so this covers the client body, the
/// scans and the whole upstream exchange; a stream is bounded from then on
/// by `max_stream_secs`. Dropping the handler drops the upstream request.
async fn deadline(State(state): State<ProxyState>, request: Request, next: Next) -> Response {
    let secs = state.config.request_timeout_secs;
    match tokio::time::timeout(Duration::from_secs(secs), next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout { secs }.into_response(),
    }
}

/// Counts requests by route and status.
async fn count_requests(State(state): State<ProxyState>, request: Request, next: Next) -> Response {
    let route = match request.uri().path() {
        p @ ("/v1/chat/completions"
        | "/v1/completions"
        | "/v1/embeddings"
        | "/v1/models"
        | "/healthz"
        | "/readyz"
        | "/metrics") => p.to_string(),
        _ => "other".to_string(),
    };
    let response = next.run(request).await;
    state
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    response
}

async fn method_not_allowed(uri: Uri) -> Response {
    ApiError::MethodNotAllowed(uri.path().to_string()).into_response()
}

/// Takes the client's `x-request-id` (if sane) or makes one, passes it on
/// to the handlers and the upstream, and returns it on the response.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let value = HeaderValue::from_str(&id).unwrap_or_else(|_| HeaderValue::from_static("invalid"));
    request.headers_mut().insert("x-request-id", value.clone());
    let mut response = next.run(request).await;
    response.headers_mut().insert("x-request-id", value);
    response
}

/// Serves `state` on `listener` until `shutdown` resolves. Then it stops
/// accepting, lets requests and streams in flight finish for up to
/// `shutdown_grace_secs`, and returns. Connection limits (header timeout,
/// header size) are applied per connection by [`connections`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: ProxyState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = connections::ConnectionLimits::from_config(&state.config);
    connections::run(listener, app(state), limits, shutdown).await
}
