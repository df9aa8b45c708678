//! Streaming through the real server: a client that disconnects cancels the
//! upstream request, and a stream the policy cuts ends the way OpenAI
//! clients expect while the upstream connection is dropped.

#![allow(
    clippy::unwrap_used,
    reason = "test setup: a failed step should fail the test loudly"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use bytes::Bytes;
use common::{Proxy, basic_config};

/// Sets its flag when the upstream's response body is dropped, i.e. when
/// the proxy closed the connection.
struct DropFlag(Arc<AtomicBool>);

impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A model that streams `pieces` then keeps sending filler forever, every
/// 20 ms, counting the chunks it managed to send.
async fn endless_model(pieces: Vec<String>) -> (String, Arc<AtomicBool>, Arc<AtomicUsize>) {
    let dropped = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let (d, s) = (dropped.clone(), sent.clone());
    let handler = move || {
        let (d, s, pieces) = (d.clone(), s.clone(), pieces.clone());
        async move {
            let guard = DropFlag(d);
            let stream = futures_util::stream::unfold((0usize, guard), move |(i, guard)| {
                let (s, pieces) = (s.clone(), pieces.clone());
                async move {
                    if i >= pieces.len() {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    let piece = pieces
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| "more filler text ".into());
                    s.fetch_add(1, Ordering::SeqCst);
                    let event = serde_json::json!({"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m",
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                    Some((
                        Ok::<Bytes, std::io::Error>(Bytes::from(format!("data: {event}\n\n"))),
                        (i + 1, guard),
                    ))
                }
            });
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(stream))
                .unwrap()
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            Router::new().route("/v1/chat/completions", post(handler)),
        )
        .await
    });
    (format!("http://{addr}/v1"), dropped, sent)
}

const POLICY: &str = "version: 1
name: stream-test
refusal: {mode: message, message: Stopped.}
stream: {holdback_chars: 32}
rules:
  - id: forbidden-output
    applies_to: output
    keywords: [\"purple elephant protocol\"]
    action: block
";

async fn wait_until(flag: &AtomicBool) -> bool {
    for _ in 0..200 {
        if flag.load(Ordering::SeqCst) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    false
}

fn stream_request() -> String {
    serde_json::json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let (upstream, dropped, sent) = endless_model(vec!["Hello ".into()]).await;
    let proxy = Proxy::start(&basic_config(&upstream), POLICY).await;
    let response = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", proxy.url))
        .header("content-type", "application/json")
        .body(stream_request())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    use futures_util::StreamExt;
    let first = body.next().await.unwrap().unwrap();
    assert!(!first.is_empty());
    drop(body);
    assert!(
        wait_until(&dropped).await,
        "upstream still streaming after the client left"
    );
    let at_drop = sent.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        sent.load(Ordering::SeqCst),
        at_drop,
        "upstream kept generating"
    );
}

#[tokio::test]
async fn a_cut_stream_ends_with_content_filter_and_drops_the_upstream() {
    let pieces: Vec<String> = "Sure, here it is. The purple elephant protocol says"
        .split_inclusive(' ')
        .map(str::to_string)
        .collect();
    let (upstream, dropped, _) = endless_model(pieces).await;
    let proxy = Proxy::start(&basic_config(&upstream), POLICY).await;
    let text = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", proxy.url))
        .header("content-type", "application/json")
        .body(stream_request())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains("purple"), "{text}");
    assert!(
        text.contains("\"finish_reason\":\"content_filter\""),
        "{text}"
    );
    assert!(text.contains("Stopped."), "{text}");
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert!(
        wait_until(&dropped).await,
        "the upstream stream was not dropped"
    );
    let metrics = proxy.state.metrics.encode();
    assert!(
        metrics.contains("stream_cuts_total{reason=\"policy\"} 1"),
        "{metrics}"
    );
}
