//! Bodies that tell a client "no" in a shape it already understands: a chat
//! completion whose assistant message is the refusal, the same as a one-chunk
//! SSE stream, a legacy text completion, or an OpenAI error envelope.

use serde_json::{Value, json};

/// `finish_reason` used for every refusal and every cut.
pub const CONTENT_FILTER: &str = "content_filter";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A fresh completion id.
pub fn completion_id(prefix: &str) -> String {
    format!("{prefix}-palisade-{}", uuid::Uuid::new_v4().simple())
}

/// A `chat.completion` whose only choice is the refusal.
pub fn chat_completion(model: &str, message: &str) -> Value {
    json!({
        "id": completion_id("chatcmpl"),
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": message, "refusal": message},
            "logprobs": null,
            "finish_reason": CONTENT_FILTER
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    })
}

/// The refusal as a complete SSE body: role + content chunk, a
/// `content_filter` finish chunk, then `[DONE]`.
pub fn chat_completion_stream(model: &str, message: &str) -> String {
    let id = completion_id("chatcmpl");
    let created = now();
    let first = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": message, "refusal": message}, "logprobs": null, "finish_reason": null}]
    });
    let last = json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": CONTENT_FILTER}]
    });
    format!("data: {first}\n\ndata: {last}\n\ndata: [DONE]\n\n")
}

/// A legacy `text_completion` carrying the refusal.
pub fn text_completion(model: &str, message: &str) -> Value {
    json!({
        "id": completion_id("cmpl"),
        "object": "text_completion",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "text": message, "logprobs": null, "finish_reason": CONTENT_FILTER}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    })
}

/// The legacy completion refusal as an SSE body.
pub fn text_completion_stream(model: &str, message: &str) -> String {
    let id = completion_id("cmpl");
    let created = now();
    let chunk = json!({
        "id": id, "object": "text_completion", "created": created, "model": model,
        "choices": [{"index": 0, "text": message, "logprobs": null, "finish_reason": CONTENT_FILTER}]
    });
    format!("data: {chunk}\n\ndata: [DONE]\n\n")
}

/// The OpenAI error envelope.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// An upstream's error body as clients expect it. An OpenAI-shaped body
/// (`{"error": {...}}`) is kept byte for byte; anything else (an HTML page
/// from a gateway, plain text, an empty body, other JSON) is wrapped in the
/// OpenAI envelope so SDKs can read it, quoting the start of what the
/// upstream said. Returns `None` when the body is kept.
pub fn wrap_upstream_error(status: u16, body: &[u8]) -> Option<Value> {
    let is_openai_shaped = serde_json::from_slice::<Value>(body)
        .ok()
        .is_some_and(|v| v.get("error").is_some_and(Value::is_object));
    if is_openai_shaped {
        return None;
    }
    const QUOTED_CHARS: usize = 300;
    let text = String::from_utf8_lossy(body);
    let quoted: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let quoted: String = quoted.chars().take(QUOTED_CHARS).collect();
    let message = if quoted.is_empty() {
        format!("the upstream answered HTTP {status} with an empty body")
    } else {
        format!("the upstream answered HTTP {status}: {quoted}")
    };
    let kind = if status >= 500 {
        "upstream_error"
    } else {
        "invalid_request_error"
    };
    Some(error_body(
        &message,
        kind,
        None,
        Some("upstream_http_error"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_errors_are_kept_when_openai_shaped_and_wrapped_otherwise() {
        let openai = br#"{"error":{"message":"bad model","type":"invalid_request_error"}}"#;
        assert_eq!(wrap_upstream_error(404, openai), None);
        let html = b"<html>\n<body>502 Bad   Gateway</body></html>";
        let wrapped = wrap_upstream_error(502, html).unwrap();
        assert_eq!(
            wrapped["error"]["message"],
            "the upstream answered HTTP 502: <html> <body>502 Bad Gateway</body></html>"
        );
        assert_eq!(wrapped["error"]["type"], "upstream_error");
        assert_eq!(wrapped["error"]["code"], "upstream_http_error");
        let empty = wrap_upstream_error(429, b"").unwrap();
        assert_eq!(empty["error"]["type"], "invalid_request_error");
        assert!(
            empty["error"]["message"]
                .as_str()
                .unwrap()
                .contains("empty body")
        );
        for other in [
            &br#"{"detail":"Not Found"}"#[..],
            b"\xff\xfe",
            br#"{"error":"quota"}"#,
        ] {
            assert!(wrap_upstream_error(400, other).is_some());
        }
        let long = "x".repeat(10_000);
        let wrapped = wrap_upstream_error(500, long.as_bytes()).unwrap();
        assert!(wrapped["error"]["message"].as_str().unwrap().len() < 400);
    }

    #[test]
    fn chat_refusal_shape() {
        let v = chat_completion("m", "no");
        assert_eq!(v["object"], "chat.completion");
        assert_eq!(v["choices"][0]["message"]["refusal"], "no");
        assert_eq!(v["choices"][0]["message"]["content"], "no");
        assert_eq!(v["choices"][0]["finish_reason"], "content_filter");
    }

    #[test]
    fn stream_refusal_is_well_formed_sse() {
        let body = chat_completion_stream("m", "no");
        let events: Vec<&str> = body.split("\n\n").filter(|e| !e.is_empty()).collect();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2], "data: [DONE]");
        for e in &events[..2] {
            let v: Value = serde_json::from_str(e.trim_start_matches("data: ")).unwrap();
            assert_eq!(v["object"], "chat.completion.chunk");
        }
    }

    #[test]
    fn error_envelope_shape() {
        let v = error_body(
            "blocked",
            "invalid_request_error",
            None,
            Some("content_filter"),
        );
        assert_eq!(v["error"]["code"], "content_filter");
        assert!(v["error"]["param"].is_null());
    }
}
