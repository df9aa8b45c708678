//! Pieces shared by the load and soak examples: a loopback server helper and
//! OpenAI-shaped streaming chunks for mock upstreams.

#![allow(dead_code)] // each example uses a different subset

use axum::Router;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use serde_json::json;

/// A benign answer, in the shape of what a chat model writes.
pub const ANSWER: &str = "Lisbon in spring is lovely: start at the Alfama, walk up to the castle, \
    then take tram 28 to Estrela. Day two, Belem and its monastery; day three, Sintra.";

/// Serves `router` on an ephemeral loopback port (TCP_NODELAY, like the
/// proxy's own listener) and returns its `/v1` base URL.
pub async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}/v1")
}

/// One `data:` event of a streamed chat answer carrying `content`.
pub fn chunk_event(content: &str) -> String {
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": null}]});
    format!("data: {chunk}\n\n")
}

/// The closing events of a streamed chat answer: `finish_reason: stop`, then `[DONE]`.
pub const STREAM_END: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";

/// A non-streamed chat answer with `content`.
pub fn chat_answer(content: &str) -> Response {
    axum::Json(json!({
        "id": "c", "object": "chat.completion", "created": 1, "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60}
    }))
    .into_response()
}

/// An SSE response with `body`.
pub fn sse_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "text/event-stream")], body).into_response()
}
