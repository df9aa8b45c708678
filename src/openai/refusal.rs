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

#[cfg(test)]
mod tests {
    use super::*;

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
