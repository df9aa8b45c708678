//! Graceful shutdown: once the signal arrives the server stops accepting,
//! lets the request in flight finish, and returns.

#![allow(
    clippy::unwrap_used,
    reason = "test setup: a failed step should fail the test loudly"
)]

mod common;

use std::time::Duration;

use common::{MockUpstream, Proxy, Reply, basic_config, keyword_policy};

#[tokio::test]
async fn in_flight_request_finishes_after_shutdown_signal() {
    let mock = MockUpstream::start().await;
    mock.reply(Reply::chat("slow but complete").delay(Duration::from_millis(600)));
    // Build the state through the shared harness, then serve it ourselves
    // with a shutdown signal we control.
    let proxy = Proxy::start(&basic_config(&mock.base_url()), &keyword_policy("message")).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(palisade::server::serve(
        listener,
        proxy.state.clone(),
        async {
            let _ = stop_rx.await;
        },
    ));

    let in_flight = tokio::spawn(async move {
        reqwest::Client::new()
            .post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(r#"{"model":"m","messages":[{"role":"user","content":"hello"}]}"#)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    mock.wait_for(1).await;
    stop_tx.send(()).unwrap();

    let body = in_flight.await.unwrap();
    assert!(body.contains("slow but complete"), "{body}");
    let result = tokio::time::timeout(Duration::from_secs(10), server).await;
    assert!(
        matches!(result, Ok(Ok(Ok(())))),
        "server did not stop cleanly"
    );
    // Nothing listens any more.
    let after = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(after.is_err(), "still accepting after shutdown");
}
