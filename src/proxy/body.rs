//! Reading a client's JSON body: content type, size limit, UTF-8 and JSON
//! shape are checked here, and every failure becomes an OpenAI-shaped 4xx.

use axum::body::Body;
use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;

use crate::config::Config;
use crate::error::ApiError;

/// How much of a request body is read, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    /// `max_body_bytes`: larger bodies get 413.
    pub max_bytes: usize,
    /// `request_body_timeout_secs`: a slower body gets 408.
    pub timeout: Duration,
}

impl BodyLimits {
    /// The limits of `config`.
    pub fn of(config: &Config) -> Self {
        Self {
            max_bytes: config.max_body_bytes,
            timeout: Duration::from_secs(config.request_body_timeout_secs),
        }
    }
}

/// A parsed request body together with the exact bytes the client sent, so
/// an unchanged request can be forwarded byte for byte.
pub struct JsonBody<T> {
    /// The typed body.
    pub value: T,
    /// The original bytes.
    pub raw: Bytes,
}

/// Reads and parses a JSON body within `limits`.
pub async fn read_json<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<JsonBody<T>, ApiError> {
    check_content_type(headers)?;
    let raw = read_limited(body, limits).await?;
    let value = parse_json(&raw)?;
    Ok(JsonBody { value, raw })
}

/// Reads a body up to `limits.max_bytes` (413 beyond) within
/// `limits.timeout` (408 after).
pub async fn read_limited(body: Body, limits: BodyLimits) -> Result<Bytes, ApiError> {
    let limit = limits.max_bytes;
    let collected = tokio::time::timeout(
        limits.timeout,
        http_body_util::Limited::new(body, limit).collect(),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout {
        secs: limits.timeout.as_secs(),
    })?;
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err)
            if err
                .downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Err(err) => Err(ApiError::bad_request(format!(
            "could not read the request body: {err}"
        ))),
    }
}

fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Err(ApiError::UnsupportedMediaType("<missing>".into()));
    };
    let text = value.to_str().unwrap_or("<invalid>");
    let essence = text
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(text.to_string()))
    }
}

/// Parses JSON with the failing key path in the error.
pub fn parse_json<T: DeserializeOwned>(raw: &[u8]) -> Result<T, ApiError> {
    if let Err(e) = std::str::from_utf8(raw) {
        return Err(ApiError::bad_request(format!(
            "request body is not valid UTF-8 (byte {})",
            e.valid_up_to()
        )));
    }
    if raw.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty: expected a JSON object",
        ));
    }
    // Valid bodies are parsed without tracking the key path, which costs
    // on every request; a body that fails is parsed again with it, for the
    // error. Both parsers accept exactly the same bodies.
    if let Ok(value) = serde_json::from_slice(raw) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(raw);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        let param = missing_field(&message)
            .map(|f| {
                if path == "." {
                    f.to_string()
                } else {
                    format!("{path}.{f}")
                }
            })
            .or_else(|| (path != ".").then(|| path.clone()));
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("request body is not valid JSON: {message}")
        } else {
            match &param {
                Some(p) => format!("invalid request: `{p}`: {message}"),
                None => format!("invalid request: {message}"),
            }
        };
        ApiError::BadRequest { message, param }
    })?;
    deserializer
        .end()
        .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
    Ok(value)
}

fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::types::ChatRequest;

    fn err_of(raw: &[u8]) -> ApiError {
        match parse_json::<ChatRequest>(raw) {
            Err(e) => e,
            Ok(_) => panic!("expected an error for {:?}", String::from_utf8_lossy(raw)),
        }
    }

    #[test]
    fn missing_fields_name_the_param() {
        let ApiError::BadRequest { param, .. } = err_of(br#"{"messages": []}"#) else {
            panic!()
        };
        assert_eq!(param.as_deref(), Some("model"));
        let ApiError::BadRequest { param, .. } = err_of(br#"{"model": "m"}"#) else {
            panic!()
        };
        assert_eq!(param.as_deref(), Some("messages"));
    }

    #[test]
    fn wrong_types_name_the_path() {
        let ApiError::BadRequest { param, message } =
            err_of(br#"{"model": "m", "messages": [{"role": 3}]}"#)
        else {
            panic!()
        };
        assert_eq!(param.as_deref(), Some("messages[0].role"), "{message}");
    }

    #[test]
    fn syntax_utf8_and_empty() {
        for raw in [
            &b"{\"model\": "[..],
            &b"\xff\xfe"[..],
            &b"  "[..],
            &b"{} trailing"[..],
        ] {
            assert!(matches!(err_of(raw), ApiError::BadRequest { .. }));
        }
    }
}
