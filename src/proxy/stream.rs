//! Streaming answers (server-sent events). This first version forwards the
//! upstream stream unchanged and says so in `x-palisade-output-check: none`;
//! moderated streaming replaces it.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;

use super::handlers::Endpoint;
use crate::policy::CompiledPolicy;

/// Forwards an upstream SSE response to the client chunk by chunk.
pub fn forward(
    upstream: reqwest::Response,
    _policy: &CompiledPolicy,
    _endpoint: Endpoint,
    _steered: bool,
) -> Response {
    let mut response = Response::new(Body::from_stream(upstream.bytes_stream()));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-palisade-output-check", HeaderValue::from_static("none"));
    response
}
