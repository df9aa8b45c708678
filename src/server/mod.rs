//! The HTTP server: routes, the middleware stack, health, and start-up.
//!
//! Middleware order (outermost first): request id → trace → handlers. The
//! request id is set before anything logs so every line and the upstream
//! call carry it.

pub mod demo;

use std::future::Future;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::proxy::ProxyState;
use crate::proxy::handlers;

/// Builds the whole application; tests drive it in-process.
pub fn app(state: ProxyState) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(handlers::chat_completions))
        .route("/v1/completions", post(handlers::completions))
        .route("/v1/embeddings", post(handlers::embeddings))
        .route("/healthz", get(healthz))
        .fallback(any(handlers::passthrough))
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(request_id))
}

async fn healthz() -> impl IntoResponse {
    axum::Json(serde_json::json!({"status": "ok"}))
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

/// Serves `state` on `listener` until `shutdown` resolves; in-flight
/// requests finish first.
pub async fn serve(listener: tokio::net::TcpListener, state: ProxyState, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, app(state)).with_graceful_shutdown(shutdown).await
}
