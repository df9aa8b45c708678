//! The `--demo` stand-in model: a tiny, deterministic OpenAI-compatible
//! server that runs in-process on a loopback port, so a newcomer can see an
//! allowed request, a blocked injection and a streamed answer without a key.
//! Every answer says it comes from the demo.

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// Label that starts every demo answer.
pub const DEMO_LABEL: &str = "[palisade demo model]";

/// Model name the demo reports.
pub const DEMO_MODEL: &str = "palisade-demo";

/// The demo's routes (mounted at `/v1`).
pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completion))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
}

/// Starts the demo on an ephemeral loopback port and returns its base URL.
pub async fn spawn() -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, router()).await {
            tracing::error!(error = %e, "demo model stopped");
        }
    });
    tracing::warn!(%addr, "DEMO MODE: answers come from a built-in stand-in model, not a real LLM");
    Ok(format!("http://{addr}/v1"))
}

/// The deterministic answer to a prompt.
pub fn answer(prompt: &str) -> String {
    let lower = prompt.to_lowercase();
    if lower.contains("demo secret") {
        // Shows output redaction: the proxy's policy redacts this key.
        return format!(
            "{DEMO_LABEL} The demo secret is sk-demoDEMOdemoDEMOdemoDEMOdemo1234 (a fake key)."
        );
    }
    let shown: String = prompt.chars().take(200).collect();
    format!(
        "{DEMO_LABEL} I am a stand-in model that only echoes. You asked: \"{shown}\". Point Palisade at a real model to get real answers."
    )
}

fn system_text(body: &Value) -> String {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    messages
        .iter()
        .filter(|m| {
            matches!(
                m.get("role").and_then(Value::as_str),
                Some("system" | "developer")
            )
        })
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .collect::<Vec<_>>()
        .join(" ")
}

fn last_user_text(body: &Value) -> String {
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return String::new();
    };
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| match m.get("content") {
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(parts)) => Some(
                parts
                    .iter()
                    .filter_map(|p| p.get("text").and_then(Value::as_str))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

async fn chat(axum::Json(body): axum::Json<Value>) -> Response {
    let prompt = last_user_text(&body);
    let text = if prompt.to_lowercase().contains("demo leak") {
        // Shows leak protection: the demo repeats its system prompt, which
        // carries the canary Palisade planted, so the answer is blocked.
        format!(
            "{DEMO_LABEL} Of course! My system prompt is: {}",
            system_text(&body)
        )
    } else {
        answer(&prompt)
    };
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEMO_MODEL)
        .to_string();
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        return sse(chat_chunks(&model, &text));
    }
    axum::Json(json!({
        "id": "chatcmpl-demo", "object": "chat.completion", "created": 0, "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

fn chat_chunks(model: &str, text: &str) -> Vec<String> {
    let mut events = vec![json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 0, "model": model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": null}]})
    .to_string()];
    for word in text.split_inclusive(' ') {
        events.push(
            json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [{"index": 0, "delta": {"content": word}, "finish_reason": null}]})
            .to_string(),
        );
    }
    events.push(
        json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
        .to_string(),
    );
    events
}

fn sse(events: Vec<String>) -> Response {
    let body: String = events
        .iter()
        .map(|e| format!("data: {e}\n\n"))
        .chain(std::iter::once("data: [DONE]\n\n".to_string()))
        .collect();
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    response
}

async fn completion(axum::Json(body): axum::Json<Value>) -> Response {
    let prompt = match body.get("prompt") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    };
    let text = answer(&prompt);
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or(DEMO_MODEL)
        .to_string();
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let events = text
            .split_inclusive(' ')
            .map(|w| json!({"id": "cmpl-demo", "object": "text_completion", "created": 0, "model": model, "choices": [{"index": 0, "text": w, "finish_reason": null}]}).to_string())
            .collect();
        return sse(events);
    }
    axum::Json(json!({
        "id": "cmpl-demo", "object": "text_completion", "created": 0, "model": model,
        "choices": [{"index": 0, "text": text, "finish_reason": "stop"}]
    }))
    .into_response()
}

async fn embeddings(axum::Json(body): axum::Json<Value>) -> Response {
    let inputs: Vec<String> = match body.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            })
            .collect(),
        _ => Vec::new(),
    };
    let data: Vec<Value> = inputs.iter().enumerate().map(|(i, text)| json!({"object": "embedding", "index": i, "embedding": pseudo_embedding(text)})).collect();
    axum::Json(json!({"object": "list", "data": data, "model": DEMO_MODEL, "usage": {"prompt_tokens": 1, "total_tokens": 1}})).into_response()
}

/// A deterministic 8-dimensional vector: enough to show the wire format.
fn pseudo_embedding(text: &str) -> Vec<f32> {
    let mut v = [0f32; 8];
    for (i, b) in text.bytes().enumerate() {
        v[i % 8] += f32::from(b) / 255.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / norm).collect()
}

async fn models() -> Response {
    axum::Json(json!({"object": "list", "data": [{"id": DEMO_MODEL, "object": "model", "created": 0, "owned_by": "palisade-demo"}]})).into_response()
}
