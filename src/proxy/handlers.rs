//! Thin handlers: read → check input → forward → check output → respond.
//! All judgement lives in [`super::guard`]; this file only moves bytes and
//! sets headers.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::body::{read_json, read_limited};
use super::guard::{self, InputCheck};
use super::state::ProxyState;
use super::stream;
use super::upstream::{UpstreamClient, response_headers};
use crate::engine::{Decision, Verdict};
use crate::error::ApiError;
use crate::openai::refusal;
use crate::openai::types::{ChatRequest, CompletionRequest, EmbeddingRequest};
use crate::policy::{CompiledPolicy, RefusalMode};

/// Largest upstream body read for a non-streamed answer.
pub const MAX_UPSTREAM_BODY: usize = 64 * 1024 * 1024;

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

/// `POST /v1/chat/completions`
pub async fn chat_completions(State(state): State<ProxyState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let policy = state.policy();
    let parsed = read_json::<ChatRequest>(&headers, body, state.config.max_body_bytes).await?;
    if parsed.value.messages.is_empty() {
        return Err(ApiError::BadRequest { message: "`messages` must contain at least one message".into(), param: Some("messages".into()) });
    }
    let model = parsed.value.model.clone();
    let streaming = parsed.value.stream == Some(true);
    let upstream = state.upstream_for(Some(&model))?;
    let check = guard::check_chat_request(&policy, parsed.value, parsed.raw)?;
    forward_checked(&state, &policy, upstream, &headers, check, Endpoint::Chat, &model, streaming).await
}

/// `POST /v1/completions`
pub async fn completions(State(state): State<ProxyState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let policy = state.policy();
    let parsed = read_json::<CompletionRequest>(&headers, body, state.config.max_body_bytes).await?;
    let model = parsed.value.model.clone();
    let streaming = parsed.value.stream == Some(true);
    let upstream = state.upstream_for(Some(&model))?;
    let check = guard::check_completion_request(&policy, parsed.value, parsed.raw)?;
    forward_checked(&state, &policy, upstream, &headers, check, Endpoint::Completion, &model, streaming).await
}

/// `POST /v1/embeddings` (inputs scanned; there is no text output to check).
pub async fn embeddings(State(state): State<ProxyState>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let policy = state.policy();
    let parsed = read_json::<EmbeddingRequest>(&headers, body, state.config.max_body_bytes).await?;
    let model = parsed.value.model.clone();
    let upstream = state.upstream_for(Some(&model))?;
    let check = guard::check_embedding_request(&policy, parsed.value, parsed.raw)?;
    forward_checked(&state, &policy, upstream, &headers, check, Endpoint::Embedding, &model, false).await
}

#[allow(clippy::too_many_arguments)]
async fn forward_checked(
    state: &ProxyState,
    policy: &CompiledPolicy,
    upstream: &UpstreamClient,
    headers: &HeaderMap,
    check: InputCheck,
    endpoint: Endpoint,
    model: &str,
    streaming: bool,
) -> Result<Response, ApiError> {
    let Some(body) = check.forward.clone() else {
        return Ok(refuse(policy, &check.decision, endpoint, model, streaming));
    };
    let path = match endpoint {
        Endpoint::Chat => "/chat/completions",
        Endpoint::Completion => "/completions",
        Endpoint::Embedding => "/embeddings",
    };
    let response = upstream.send(Method::POST, path, Some(body), headers, state.config.forward_client_authorization, streaming).await?;
    if !response.status().is_success() {
        return upstream_error_passthrough(upstream, response, &check.decision).await;
    }
    let upstream_headers = response_headers(response.headers());
    if streaming {
        let mut out = stream::forward(response, policy, endpoint, check.steered);
        decorate(&mut out, check.decision.verdict, &check.decision.rule_ids().iter().map(|s| s.to_string()).collect::<Vec<_>>());
        return Ok(out);
    }
    let raw = upstream.read_body(response, MAX_UPSTREAM_BODY).await?;
    let steer_refusal = check.decision.message.clone().unwrap_or_else(|| policy.refusal_message.clone());
    let output = match endpoint {
        Endpoint::Chat => Some(guard::check_chat_response(policy, raw, check.steered, &steer_refusal, &upstream.name)?),
        Endpoint::Completion => Some(guard::check_completion_response(policy, raw, &upstream.name)?),
        Endpoint::Embedding => {
            let mut out = json_response(StatusCode::OK, upstream_headers, raw);
            decorate(&mut out, check.decision.verdict, &check.decision.rule_ids().iter().map(|s| s.to_string()).collect::<Vec<_>>());
            return Ok(out);
        }
    };
    let output = output.ok_or_else(|| ApiError::Internal("no output check".into()))?;
    let (verdict, rules) = guard::combine(&check.decision, Some(&output.decision));
    let mut out = json_response(StatusCode::OK, upstream_headers, output.body);
    decorate(&mut out, verdict, &rules);
    Ok(out)
}

fn json_response(status: StatusCode, mut headers: HeaderMap, body: Bytes) -> Response {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    (status, headers, body).into_response()
}

/// Adds the decision headers every proxied response carries.
pub fn decorate(response: &mut Response, verdict: Verdict, rules: &[String]) {
    let headers = response.headers_mut();
    headers.insert("x-palisade-decision", HeaderValue::from_static(verdict.as_str()));
    if let Ok(value) = HeaderValue::from_str(&rules.join(",")) {
        headers.insert("x-palisade-rules", value);
    }
}

/// The refusal in the shape the client's endpoint and the policy's mode call for.
fn refuse(policy: &CompiledPolicy, decision: &Decision, endpoint: Endpoint, model: &str, streaming: bool) -> Response {
    let message = decision.message.clone().unwrap_or_else(|| policy.refusal_message.clone());
    let mut response = match (policy.refusal_mode, endpoint) {
        (RefusalMode::Error, _) | (_, Endpoint::Embedding) => ApiError::ContentFilter { message }.into_response(),
        (RefusalMode::Message, Endpoint::Chat) if streaming => sse_response(refusal::chat_completion_stream(model, &message)),
        (RefusalMode::Message, Endpoint::Chat) => axum::Json(refusal::chat_completion(model, &message)).into_response(),
        (RefusalMode::Message, Endpoint::Completion) if streaming => sse_response(refusal::text_completion_stream(model, &message)),
        (RefusalMode::Message, Endpoint::Completion) => axum::Json(refusal::text_completion(model, &message)).into_response(),
    };
    decorate(&mut response, Verdict::Block, &decision.rule_ids().iter().map(|s| s.to_string()).collect::<Vec<_>>());
    response
}

fn sse_response(body: String) -> Response {
    let mut response = Response::new(Body::from(body));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Upstream 4xx/5xx: status and body go to the client as they are.
async fn upstream_error_passthrough(upstream: &UpstreamClient, response: reqwest::Response, decision: &Decision) -> Result<Response, ApiError> {
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response_headers(response.headers());
    let body = upstream.read_body(response, MAX_UPSTREAM_BODY).await?;
    let mut out = (status, headers, body).into_response();
    decorate(&mut out, decision.verdict, &decision.rule_ids().iter().map(|s| s.to_string()).collect::<Vec<_>>());
    Ok(out)
}

/// `GET /v1/models` and configured pass-through paths: forwarded to the
/// default upstream without scanning.
pub async fn passthrough(State(state): State<ProxyState>, method: Method, uri: Uri, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let path = uri.path();
    let is_models = path == "/v1/models" || path.starts_with("/v1/models/");
    if !is_models && !state.config.passthrough_paths.iter().any(|p| p == path) {
        return Err(ApiError::NotFound(path.to_string()));
    }
    if is_models && method != Method::GET {
        return Err(ApiError::MethodNotAllowed(path.to_string()));
    }
    let upstream = state.upstream_for(None)?;
    let body = read_limited(body, state.config.max_body_bytes).await?;
    let relative = path.strip_prefix("/v1").unwrap_or(path);
    let relative = match uri.query() {
        Some(q) => format!("{relative}?{q}"),
        None => relative.to_string(),
    };
    let body = (!body.is_empty()).then_some(body);
    let response = upstream.send(method, &relative, body, &headers, state.config.forward_client_authorization, false).await?;
    let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let headers = response_headers(response.headers());
    let body = upstream.read_body(response, MAX_UPSTREAM_BODY).await?;
    Ok((status, headers, body).into_response())
}
