//! Thin handlers: read → check input → forward → check output → respond.
//! All judgement lives in [`super::guard`]; this file only moves bytes and
//! sets headers.

use axum::body::Body;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::auth::KeyIdentity;
use super::body::{BodyLimits, read_json, read_limited};
use super::guard::{self, Capture, InputCheck};
use super::state::ProxyState;
use super::stream;
use super::upstream::{UpstreamClient, response_headers};
use crate::config::FailMode;
use crate::engine::{Decision, SegmentCache, Verdict};
use crate::error::ApiError;
use crate::openai::refusal;
use crate::openai::types::{ChatRequest, CompletionRequest, EmbeddingRequest};
use crate::policy::{CompiledPolicy, Direction, RefusalMode};
use crate::telemetry::audit::{AuditContext, CapturedText};
use crate::telemetry::metrics::{DecisionLabels, DirectionLabels, ReasonLabels};

/// Which endpoint a refusal must imitate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`
    Chat,
    /// `/v1/completions`
    Completion,
    /// `/v1/embeddings`
    Embedding,
}

/// Per-request facts every step needs: the policy it started with, the
/// caller's key, its id and route.
#[derive(Clone)]
pub struct RequestContext {
    /// The policy for this request (kept even if a reload happens meanwhile).
    pub policy: Arc<CompiledPolicy>,
    /// The detection cache of `policy` (`None`: caching is off, or the
    /// policy was replaced while the request started).
    pub cache: Option<Arc<SegmentCache>>,
    /// The authenticated proxy key, if any.
    pub key: Option<KeyIdentity>,
    /// `x-request-id`.
    pub request_id: String,
    /// Route path.
    pub route: &'static str,
}

impl RequestContext {
    fn new(
        state: &ProxyState,
        headers: &HeaderMap,
        key: Option<KeyIdentity>,
        model: &str,
        route: &'static str,
    ) -> Self {
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let policy = state.policy_for(key.as_ref(), Some(model), route);
        let cache = state.cache_for(&policy);
        Self {
            policy,
            cache,
            key,
            request_id,
            route,
        }
    }

    fn audit(
        &self,
        state: &ProxyState,
        direction: Direction,
        decision: &Decision,
        texts: &[CapturedText],
    ) {
        let ctx = AuditContext {
            request_id: &self.request_id,
            key_id: self.key.as_ref().map(|k| k.id.as_str()),
            policy: &self.policy.name,
            route: self.route,
            monitor: decision.monitor_verdict.is_some(),
        };
        state.audit.record(&ctx, direction, decision, texts);
        for f in &decision.findings {
            state
                .metrics
                .decisions
                .get_or_create(&DecisionLabels {
                    policy: self.policy.name.clone(),
                    rule: f.rule.to_string(),
                    category: f.category.as_deref().unwrap_or("").to_string(),
                    action: f.action.as_str().to_string(),
                    direction: direction.as_str().to_string(),
                    mode: if f.monitor { "monitor" } else { "enforce" }.to_string(),
                })
                .inc();
        }
    }
}

fn capture_of(state: &ProxyState) -> Capture {
    Capture {
        texts: state.audit.enabled(),
        raw: state.audit.include_text(),
    }
}

/// Runs a guard check, timing it, and applies `fail_mode` if it panics:
/// `closed` refuses, `open` returns `None` so the caller forwards unscanned.
fn guarded<T>(
    state: &ProxyState,
    direction: Direction,
    check: impl FnOnce() -> Result<T, ApiError>,
) -> Result<Option<T>, ApiError> {
    let started = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(check));
    state
        .metrics
        .scan_seconds
        .get_or_create(&DirectionLabels {
            direction: direction.as_str().into(),
        })
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(result) => result.map(Some),
        Err(_) => match state.config.fail_mode {
            FailMode::Closed => {
                state.metrics.fail_closed.inc();
                Err(ApiError::GuardFailed)
            }
            FailMode::Open => {
                state.metrics.fail_open.inc();
                tracing::error!(
                    direction = direction.as_str(),
                    "guard failed; forwarding unscanned (fail_mode: open)"
                );
                Ok(None)
            }
        },
    }
}

/// The input check's outcome when the guard failed open: forward as sent.
fn unscanned(raw: Bytes) -> InputCheck {
    InputCheck {
        decision: Decision::allow(),
        texts: Vec::new(),
        forward: Some(raw),
        steered: false,
        leak: None,
    }
}

/// `POST /v1/chat/completions`
pub async fn chat_completions(
    State(state): State<ProxyState>,
    key: Option<Extension<KeyIdentity>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let parsed = read_json::<ChatRequest>(&headers, body, BodyLimits::of(&state.config)).await?;
    if parsed.value.messages.is_empty() {
        return Err(ApiError::BadRequest {
            message: "`messages` must contain at least one message".into(),
            param: Some("messages".into()),
        });
    }
    let model = parsed.value.model.clone();
    let streaming = parsed.value.stream == Some(true);
    let ctx = RequestContext::new(
        &state,
        &headers,
        key.map(|k| k.0),
        &model,
        "/v1/chat/completions",
    );
    let upstream = state.upstream_for(Some(&model))?;
    let raw = parsed.raw.clone();
    let capture = capture_of(&state);
    let check = guarded(&state, Direction::Input, || {
        guard::check_chat_request(
            &ctx.policy,
            ctx.cache.as_deref(),
            parsed.value,
            parsed.raw,
            capture,
        )
    })?;
    let (check, fail_open) = match check {
        Some(c) => (c, false),
        None => (unscanned(raw), true),
    };
    forward_checked(
        &state,
        &ctx,
        upstream,
        &headers,
        check,
        Endpoint::Chat,
        &model,
        streaming,
        fail_open,
    )
    .await
}

/// `POST /v1/completions`
pub async fn completions(
    State(state): State<ProxyState>,
    key: Option<Extension<KeyIdentity>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let parsed =
        read_json::<CompletionRequest>(&headers, body, BodyLimits::of(&state.config)).await?;
    let model = parsed.value.model.clone();
    let streaming = parsed.value.stream == Some(true);
    let ctx = RequestContext::new(
        &state,
        &headers,
        key.map(|k| k.0),
        &model,
        "/v1/completions",
    );
    let upstream = state.upstream_for(Some(&model))?;
    let raw = parsed.raw.clone();
    let capture = capture_of(&state);
    let check = guarded(&state, Direction::Input, || {
        guard::check_completion_request(
            &ctx.policy,
            ctx.cache.as_deref(),
            parsed.value,
            parsed.raw,
            capture,
        )
    })?;
    let (check, fail_open) = match check {
        Some(c) => (c, false),
        None => (unscanned(raw), true),
    };
    forward_checked(
        &state,
        &ctx,
        upstream,
        &headers,
        check,
        Endpoint::Completion,
        &model,
        streaming,
        fail_open,
    )
    .await
}

/// `POST /v1/embeddings` (inputs scanned; there is no text output to check).
pub async fn embeddings(
    State(state): State<ProxyState>,
    key: Option<Extension<KeyIdentity>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let parsed =
        read_json::<EmbeddingRequest>(&headers, body, BodyLimits::of(&state.config)).await?;
    let model = parsed.value.model.clone();
    let ctx = RequestContext::new(&state, &headers, key.map(|k| k.0), &model, "/v1/embeddings");
    let upstream = state.upstream_for(Some(&model))?;
    let raw = parsed.raw.clone();
    let capture = capture_of(&state);
    let check = guarded(&state, Direction::Input, || {
        guard::check_embedding_request(
            &ctx.policy,
            ctx.cache.as_deref(),
            parsed.value,
            parsed.raw,
            capture,
        )
    })?;
    let (check, fail_open) = match check {
        Some(c) => (c, false),
        None => (unscanned(raw), true),
    };
    forward_checked(
        &state,
        &ctx,
        upstream,
        &headers,
        check,
        Endpoint::Embedding,
        &model,
        false,
        fail_open,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn forward_checked(
    state: &ProxyState,
    ctx: &RequestContext,
    upstream: &UpstreamClient,
    headers: &HeaderMap,
    check: InputCheck,
    endpoint: Endpoint,
    model: &str,
    streaming: bool,
    fail_open: bool,
) -> Result<Response, ApiError> {
    let policy = &ctx.policy;
    ctx.audit(state, Direction::Input, &check.decision, &check.texts);
    let input_rules: Vec<String> = check
        .decision
        .rule_ids()
        .iter()
        .map(|s| s.to_string())
        .collect();
    let Some(body) = check.forward.clone() else {
        let mut response = refuse(policy, &check.decision, endpoint, model, streaming);
        mark(
            &mut response,
            policy,
            check.decision.monitor_verdict,
            fail_open,
        );
        return Ok(response);
    };
    let path = match endpoint {
        Endpoint::Chat => "/chat/completions",
        Endpoint::Completion => "/completions",
        Endpoint::Embedding => "/embeddings",
    };
    let started = Instant::now();
    let response = upstream
        .send(
            Method::POST,
            path,
            Some(body),
            headers,
            state.config.forward_client_authorization,
            streaming,
        )
        .await?;
    state
        .metrics
        .upstream_seconds
        .observe(started.elapsed().as_secs_f64());
    if !response.status().is_success() {
        let mut out = upstream_error_passthrough(
            upstream,
            response,
            &check.decision,
            state.config.max_upstream_body_bytes,
        )
        .await?;
        mark(&mut out, policy, check.decision.monitor_verdict, fail_open);
        return Ok(out);
    }
    let upstream_headers = response_headers(response.headers());
    if streaming || endpoint == Endpoint::Embedding {
        let mut out = if streaming {
            let guard = stream::StreamGuard::new(
                Arc::clone(policy),
                endpoint,
                check.steered,
                check
                    .decision
                    .message
                    .clone()
                    .unwrap_or_else(|| policy.refusal_message.clone()),
            );
            let guard = match &check.leak {
                Some(leak) => guard.with_leak_checks(Arc::clone(leak)),
                None => guard,
            };
            stream::moderate(
                response,
                guard,
                stream_outcome_recorder(state, ctx),
                Duration::from_secs(state.config.max_stream_secs),
            )
        } else {
            let raw = upstream
                .read_object(response, state.config.max_upstream_body_bytes)
                .await?;
            json_response(StatusCode::OK, upstream_headers, raw)
        };
        decorate(&mut out, check.decision.verdict, &input_rules);
        mark(&mut out, policy, check.decision.monitor_verdict, fail_open);
        return Ok(out);
    }
    let raw = upstream
        .read_body(response, state.config.max_upstream_body_bytes)
        .await?;
    let steer_refusal = check
        .decision
        .message
        .clone()
        .unwrap_or_else(|| policy.refusal_message.clone());
    let capture = capture_of(state);
    let output = guarded(state, Direction::Output, || match endpoint {
        Endpoint::Chat => guard::check_chat_response(
            policy,
            raw.clone(),
            check.steered,
            &steer_refusal,
            check.leak.as_deref(),
            &upstream.name,
            capture,
        ),
        _ => guard::check_completion_response(policy, raw.clone(), &upstream.name, capture),
    })?;
    let Some(output) = output else {
        let mut out = json_response(StatusCode::OK, upstream_headers, raw);
        decorate(&mut out, check.decision.verdict, &input_rules);
        mark(&mut out, policy, check.decision.monitor_verdict, true);
        return Ok(out);
    };
    ctx.audit(state, Direction::Output, &output.decision, &output.texts);
    let (verdict, rules) = guard::combine(&check.decision, Some(&output.decision));
    let monitor = check
        .decision
        .monitor_verdict
        .max(output.decision.monitor_verdict);
    let mut out = json_response(StatusCode::OK, upstream_headers, output.body);
    decorate(&mut out, verdict, &rules);
    mark(&mut out, policy, monitor, fail_open);
    Ok(out)
}

/// Records a finished stream's output decision in the audit log and metrics.
fn stream_outcome_recorder(state: &ProxyState, ctx: &RequestContext) -> stream::OnEnd {
    let state = state.clone();
    let ctx = ctx.clone();
    Box::new(move |decision, cut| {
        ctx.audit(&state, Direction::Output, decision, &[]);
        if let Some(cut) = cut {
            state
                .metrics
                .stream_cuts
                .get_or_create(&ReasonLabels {
                    reason: cut.reason.to_string(),
                })
                .inc();
        }
    })
}

/// Adds the policy name, what monitor-mode rules would have done, and
/// whether the guard failed open.
fn mark(
    response: &mut Response,
    policy: &CompiledPolicy,
    monitor: Option<Verdict>,
    fail_open: bool,
) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&policy.name) {
        headers.insert("x-palisade-policy", value);
    }
    if let Some(verdict) = monitor {
        headers.insert(
            "x-palisade-monitor",
            HeaderValue::from_static(verdict.as_str()),
        );
    }
    if fail_open {
        headers.insert("x-palisade-fail-open", HeaderValue::from_static("true"));
    }
}

fn json_response(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Response {
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (status, headers, body).into_response()
}

/// Adds the decision headers every proxied response carries.
pub fn decorate(response: &mut Response, verdict: Verdict, rules: &[String]) {
    let headers = response.headers_mut();
    headers.insert(
        "x-palisade-decision",
        HeaderValue::from_static(verdict.as_str()),
    );
    if let Ok(value) = HeaderValue::from_str(&rules.join(",")) {
        headers.insert("x-palisade-rules", value);
    }
}

/// The refusal in the shape the client's endpoint and the policy's mode call for.
fn refuse(
    policy: &CompiledPolicy,
    decision: &Decision,
    endpoint: Endpoint,
    model: &str,
    streaming: bool,
) -> Response {
    let message = decision
        .message
        .clone()
        .unwrap_or_else(|| policy.refusal_message.clone());
    let mut response = match (policy.refusal_mode, endpoint) {
        (RefusalMode::Error, _) | (_, Endpoint::Embedding) => {
            ApiError::ContentFilter { message }.into_response()
        }
        (RefusalMode::Message, Endpoint::Chat) if streaming => {
            sse_response(refusal::chat_completion_stream(model, &message))
        }
        (RefusalMode::Message, Endpoint::Chat) => {
            axum::Json(refusal::chat_completion(model, &message)).into_response()
        }
        (RefusalMode::Message, Endpoint::Completion) if streaming => {
            sse_response(refusal::text_completion_stream(model, &message))
        }
        (RefusalMode::Message, Endpoint::Completion) => {
            axum::Json(refusal::text_completion(model, &message)).into_response()
        }
    };
    decorate(
        &mut response,
        Verdict::Block,
        &decision
            .rule_ids()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    response
}

fn sse_response(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Upstream 4xx/5xx: the status goes to the client as it is, and the body
/// too when it is an OpenAI error; any other body is wrapped in one.
async fn upstream_error_passthrough(
    upstream: &UpstreamClient,
    response: reqwest::Response,
    decision: &Decision,
    limit: usize,
) -> Result<Response, ApiError> {
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut headers = response_headers(response.headers());
    let mut body = upstream.read_body(response, limit).await?;
    if let Some(wrapped) = refusal::wrap_upstream_error(status.as_u16(), &body) {
        body = Bytes::from(wrapped.to_string());
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    let mut out = (status, headers, body).into_response();
    decorate(
        &mut out,
        decision.verdict,
        &decision
            .rule_ids()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
    );
    Ok(out)
}

/// `GET /v1/models` and configured pass-through paths: forwarded to the
/// default upstream without scanning.
pub async fn passthrough(
    State(state): State<ProxyState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let is_models = path == "/v1/models" || path.starts_with("/v1/models/");
    if !is_models && !state.config.passthrough_paths.iter().any(|p| p == path) {
        return Err(ApiError::NotFound(path.to_string()));
    }
    if is_models && method != Method::GET {
        return Err(ApiError::MethodNotAllowed(path.to_string()));
    }
    let upstream = state.upstream_for(None)?;
    let body = read_limited(body, BodyLimits::of(&state.config)).await?;
    let relative = path.strip_prefix("/v1").unwrap_or(path);
    let relative = match uri.query() {
        Some(q) => format!("{relative}?{q}"),
        None => relative.to_string(),
    };
    let body = (!body.is_empty()).then_some(body);
    let response = upstream
        .send(
            method,
            &relative,
            body,
            &headers,
            state.config.forward_client_authorization,
            false,
        )
        .await?;
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response_headers(response.headers());
    let body = upstream
        .read_body(response, state.config.max_upstream_body_bytes)
        .await?;
    Ok((status, headers, body).into_response())
}
