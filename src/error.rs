//! The one error type that crosses the HTTP boundary. Every variant maps to a
//! status and an OpenAI-shaped body (`{"error": {message, type, param, code}}`)
//! in one exhaustive match, so a new failure forces a decision about what the
//! client sees. 5xx bodies stay generic; details go to the log once.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::openai::refusal::error_body;

/// A request that ends in an error response.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request body is not what the endpoint accepts.
    #[error("{message}")]
    BadRequest {
        /// Human-readable explanation.
        message: String,
        /// The offending parameter, when known.
        param: Option<String>,
    },
    /// The body exceeds the configured limit.
    #[error("request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("unsupported content type `{0}`: send `Content-Type: application/json`")]
    UnsupportedMediaType(String),
    /// No such route.
    #[error("unknown path `{0}`")]
    NotFound(String),
    /// Wrong method on a known route.
    #[error("method not allowed for `{0}`")]
    MethodNotAllowed(String),
    /// The policy blocked the request and the policy answers with errors.
    #[error("{message}")]
    ContentFilter {
        /// The refusal text.
        message: String,
    },
    /// No upstream is configured for this model.
    #[error("no upstream is configured for model `{0}`")]
    NoUpstream(String),
    /// The upstream could not be reached.
    #[error("upstream `{upstream}` is unreachable: {detail}")]
    UpstreamUnavailable {
        /// Upstream name.
        upstream: String,
        /// Connection error (logged, not sent).
        detail: String,
    },
    /// The upstream did not answer in time.
    #[error("upstream `{upstream}` timed out")]
    UpstreamTimeout {
        /// Upstream name.
        upstream: String,
    },
    /// The upstream's non-streamed answer is larger than the proxy buffers.
    #[error("upstream `{upstream}` answered with more than {limit} bytes")]
    UpstreamTooLarge {
        /// Upstream name.
        upstream: String,
        /// `max_upstream_body_bytes`.
        limit: usize,
    },
    /// The client did not send its whole request body in time.
    #[error("the request body did not arrive within {secs} s")]
    BodyTimeout {
        /// `request_body_timeout_secs`.
        secs: u64,
    },
    /// The request did not produce a response within `request_timeout_secs`.
    #[error("the request did not complete within {secs} s")]
    RequestTimeout {
        /// `request_timeout_secs`.
        secs: u64,
    },
    /// The upstream answered with something that is not a valid response.
    #[error("upstream `{upstream}` returned an invalid response: {detail}")]
    UpstreamInvalid {
        /// Upstream name.
        upstream: String,
        /// What was wrong (logged, not sent).
        detail: String,
    },
    /// The guard itself failed and `fail_mode` is `closed`.
    #[error("the guard failed while checking this request")]
    GuardFailed,
    /// A proxy API key is required and was missing or wrong.
    #[error("missing or invalid API key for the guardrail proxy")]
    Unauthorized,
    /// Too many requests in flight: shed instead of queueing.
    #[error("the guardrail proxy is at its concurrency limit; retry shortly")]
    Overloaded,
    /// A bug or resource failure inside Palisade.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Shorthand for a 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            param: None,
        }
    }

    /// The status code for this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::ContentFilter { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::NotFound(_) | ApiError::NoUpstream(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UpstreamUnavailable { .. }
            | ApiError::UpstreamInvalid { .. }
            | ApiError::UpstreamTooLarge { .. } => StatusCode::BAD_GATEWAY,
            ApiError::UpstreamTimeout { .. } | ApiError::RequestTimeout { .. } => {
                StatusCode::GATEWAY_TIMEOUT
            }
            ApiError::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::GuardFailed => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// `(type, code, param, client message)` of the OpenAI envelope.
    fn envelope(&self) -> (&'static str, Option<&'static str>, Option<String>, String) {
        match self {
            ApiError::BadRequest { message, param } => ("invalid_request_error", None, param.clone(), message.clone()),
            ApiError::PayloadTooLarge { .. } => ("invalid_request_error", Some("request_too_large"), None, self.to_string()),
            ApiError::UnsupportedMediaType(_) => ("invalid_request_error", Some("unsupported_media_type"), None, self.to_string()),
            ApiError::NotFound(_) => ("invalid_request_error", Some("unknown_url"), None, self.to_string()),
            ApiError::MethodNotAllowed(_) => ("invalid_request_error", Some("method_not_allowed"), None, self.to_string()),
            ApiError::ContentFilter { message } => ("invalid_request_error", Some("content_filter"), None, message.clone()),
            ApiError::NoUpstream(_) => ("invalid_request_error", Some("model_not_found"), Some("model".into()), self.to_string()),
            ApiError::UpstreamUnavailable { upstream, .. } => {
                ("upstream_error", Some("upstream_unavailable"), None, format!("upstream `{upstream}` is unreachable"))
            }
            ApiError::UpstreamTimeout { .. } => ("upstream_error", Some("upstream_timeout"), None, self.to_string()),
            ApiError::UpstreamInvalid { upstream, .. } => {
                ("upstream_error", Some("upstream_invalid_response"), None, format!("upstream `{upstream}` returned an invalid response"))
            }
            ApiError::UpstreamTooLarge { .. } => ("upstream_error", Some("upstream_response_too_large"), None, self.to_string()),
            ApiError::BodyTimeout { .. } => ("invalid_request_error", Some("request_body_timeout"), None, self.to_string()),
            ApiError::RequestTimeout { .. } => ("server_error", Some("request_timeout"), None, self.to_string()),
            ApiError::Internal(_) => ("server_error", Some("internal_error"), None, "internal error in the guardrail proxy".into()),
            ApiError::GuardFailed => ("server_error", Some("guard_failed"), None, "the guardrail could not check this request; it was not forwarded (fail_mode: closed)".into()),
            ApiError::Overloaded => ("server_error", Some("overloaded"), None, self.to_string()),
            ApiError::Unauthorized => ("invalid_request_error", Some("invalid_api_key"), None, "Incorrect or missing API key for the guardrail proxy. Send `Authorization: Bearer <key>`.".into()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, status = status.as_u16(), "request failed");
        } else {
            tracing::debug!(error = %self, status = status.as_u16(), "request rejected");
        }
        let (kind, code, param, message) = self.envelope();
        let body = error_body(&message, kind, param.as_deref(), code);
        let mut response = (status, axum::Json(body)).into_response();
        if matches!(self, ApiError::ContentFilter { .. }) {
            response
                .headers_mut()
                .insert("x-palisade-decision", HeaderValue::from_static("block"));
        }
        if matches!(self, ApiError::Overloaded) {
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
        }
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert("www-authenticate", HeaderValue::from_static("Bearer"));
        }
        response
    }
}
