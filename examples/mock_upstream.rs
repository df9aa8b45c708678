//! A fast mock model server for load tests, run as its own process so that
//! the load generator, the mock and the proxy under test do not share a
//! runtime. Answers `POST /v1/chat/completions` (and `/chat/completions`)
//! with a fixed benign answer, non-streamed or (`"stream": true`) as an SSE
//! stream of N content chunks, a `finish_reason` chunk and `[DONE]`; also
//! `GET /v1/models` and `GET /healthz`. Every answer is built once at
//! start-up, so a request costs one parse of its body for `stream`.
//!
//! Run: `cargo run --release --example mock_upstream -- [--port N]
//! [--chunks N] [--threads N]`. `--port 0` (the default) picks a free port;
//! the first line on stdout is `listening on http://127.0.0.1:PORT/v1`.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod common;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use common::{ANSWER, STREAM_END, chunk_event};
use serde::Deserialize;
use serde_json::json;
use std::io::Write;

struct Options {
    port: u16,
    chunks: usize,
    threads: Option<usize>,
}

fn options() -> Options {
    let mut options = Options {
        port: 0,
        chunks: 16,
        threads: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| -> usize {
            args.next()
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("{name} needs a number"))
        };
        match arg.as_str() {
            "--port" => options.port = u16::try_from(value("--port")).expect("a port"),
            "--chunks" => options.chunks = value("--chunks"),
            "--threads" => options.threads = Some(value("--threads")),
            "-h" | "--help" => {
                println!("usage: mock_upstream [--port N] [--chunks N] [--threads N]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other} (try --help)"),
        }
    }
    options
}

/// Only what the mock needs from a request; other fields are skipped.
#[derive(Deserialize)]
struct Request {
    #[serde(default)]
    stream: bool,
}

#[derive(Clone)]
struct Answers {
    plain: Bytes,
    /// The stream, one `Bytes` per SSE event (sent as separate body frames).
    events: Vec<Bytes>,
}

impl Answers {
    fn new(chunks: usize) -> Self {
        let plain = json!({
            "id": "chatcmpl-mock", "object": "chat.completion", "created": 1, "model": "mock",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": ANSWER},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 20, "completion_tokens": 40, "total_tokens": 60}
        })
        .to_string();
        let words: Vec<&str> = ANSWER.split_inclusive(' ').collect();
        let mut events: Vec<Bytes> = (0..chunks)
            .map(|i| Bytes::from(chunk_event(words[i % words.len()])))
            .collect();
        events.push(Bytes::from_static(STREAM_END.as_bytes()));
        Self {
            plain: Bytes::from(plain),
            events,
        }
    }
}

async fn chat(
    axum::extract::State(answers): axum::extract::State<Answers>,
    body: Bytes,
) -> Response {
    let Ok(request) = serde_json::from_slice::<Request>(&body) else {
        return (StatusCode::BAD_REQUEST, "body is not a chat request").into_response();
    };
    if request.stream {
        let frames = answers
            .events
            .clone()
            .into_iter()
            .map(Ok::<_, std::io::Error>);
        let mut response = Response::new(Body::from_stream(futures_util::stream::iter(frames)));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream"),
        );
        return response;
    }
    let mut response = Response::new(Body::from(answers.plain.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn models() -> Response {
    axum::Json(json!({"object": "list", "data": [
        {"id": "mock", "object": "model", "created": 1, "owned_by": "palisade"}]}))
    .into_response()
}

fn main() {
    let options = options();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        runtime.worker_threads(threads);
    }
    let runtime = runtime.enable_all().build().expect("tokio runtime");
    runtime.block_on(async move {
        let router = Router::new()
            .route("/v1/chat/completions", post(chat))
            .route("/chat/completions", post(chat))
            .route("/v1/models", get(models))
            .route("/models", get(models))
            .route("/healthz", get(|| async { "ok" }))
            .with_state(Answers::new(options.chunks));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .unwrap_or_else(|e| panic!("cannot listen on port {}: {e}", options.port));
        let addr = listener.local_addr().unwrap();
        println!("listening on http://{addr}/v1");
        std::io::stdout().flush().unwrap();
        let listener = listener.tap_io(|tcp| tcp.set_nodelay(true).unwrap());
        axum::serve(listener, router).await.unwrap();
    });
}
