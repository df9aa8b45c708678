//! Fault injection: the proxy against upstreams that misbehave at the byte
//! level (raw loopback TCP servers, not the axum mock), and against clients
//! that try to hold connections (slowloris).
//!
//! Every fault must end in a bounded, OpenAI-shaped error: a status and an
//! error JSON for non-streamed requests, an error event and then the end of
//! the body for streams. The same proxy must then serve a normal request,
//! and the misbehaving upstream must see its connection closed by the proxy
//! (nothing keeps reading from it in the background). Timeouts in the
//! configuration are 1–2 s so the whole file runs in seconds; every wait in
//! the tests has an outer bound so a hang fails instead of blocking CI.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests: a failed step should fail the test loudly"
)]

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use common::{ClosedPort, MockUpstream, Proxy, closed_port, keyword_policy, sse_chat};

/// Outer bound on any single wait in this file.
const HANG: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------------------
// Misbehaving upstreams
// ---------------------------------------------------------------------------

/// What a raw upstream does after reading the proxy's request.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Nothing listens on the port.
    Refuse,
    /// Reads the request and never answers.
    Silent,
    /// Answers bytes that are not HTTP.
    Garbage,
    /// `Content-Length` larger than what is sent, then close.
    Truncated,
    /// A status line and headers, then nothing.
    HeadThenSilence,
    /// An SSE stream that never ends (a chunk every 20 ms).
    Endless,
    /// 100 MB with a `Content-Length`.
    Huge,
    /// 100 MB, chunked, no `Content-Length`.
    HugeChunked,
    /// Two stream events, then the connection closes.
    CloseMidStream,
    /// A valid head, then the body one byte every 200 ms (each read is
    /// quicker than the read timeout; the whole answer is not).
    Dribble,
}

/// A raw upstream on a loopback port; `closed` receives one message per
/// connection once the proxy closed it (read returned 0 or an error, or a
/// write failed).
struct RawUpstream {
    base_url: String,
    closed: mpsc::UnboundedReceiver<()>,
    /// For `Fault::Refuse`: the port that refuses, reserved while the case runs.
    _refusing: Option<ClosedPort>,
}

impl RawUpstream {
    async fn start(fault: Fault, streaming: bool) -> Self {
        let (tx, closed) = mpsc::unbounded_channel();
        if matches!(fault, Fault::Refuse) {
            let port = closed_port();
            return Self {
                base_url: port.url.clone(),
                closed,
                _refusing: Some(port),
            };
        }
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    misbehave(tcp, fault, streaming).await;
                    let _ = tx.send(());
                });
            }
        });
        Self {
            base_url: format!("http://{addr}/v1"),
            closed,
            _refusing: None,
        }
    }

    /// Waits until the proxy closed a connection to this upstream.
    async fn assert_closed_by_proxy(&mut self, within: Duration) {
        tokio::time::timeout(within, self.closed.recv())
            .await
            .expect("the proxy kept the upstream connection open")
            .expect("upstream task ended");
    }
}

/// Reads one request head and its `Content-Length` body.
async fn read_request(tcp: &mut TcpStream) -> Option<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(())
}

/// Reads until the peer closes (0 or error), at most [`HANG`].
async fn until_closed(tcp: &mut TcpStream) {
    let mut sink = [0u8; 1024];
    let _ = tokio::time::timeout(HANG, async {
        while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

fn content_type(streaming: bool) -> &'static str {
    if streaming {
        "text/event-stream"
    } else {
        "application/json"
    }
}

/// A complete valid answer body.
fn valid_body(streaming: bool) -> String {
    if streaming {
        sse_chat(&["fine"])
    } else {
        common::chat_completion("faulty", "fine").to_string()
    }
}

async fn misbehave(mut tcp: TcpStream, fault: Fault, streaming: bool) {
    if read_request(&mut tcp).await.is_none() {
        return;
    }
    let ct = content_type(streaming);
    match fault {
        Fault::Refuse => {}
        Fault::Silent => until_closed(&mut tcp).await,
        Fault::Garbage => {
            let _ = tcp
                .write_all(b"SSH-2.0-OpenSSH_9.6\r\n\x00\xff\xfe garbage\r\n\r\n")
                .await;
            until_closed(&mut tcp).await;
        }
        Fault::Truncated => {
            let body = valid_body(streaming);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
                body.len() + 1000
            );
            let _ = tcp.write_all(head.as_bytes()).await;
            let _ = tcp.write_all(&body.as_bytes()[..body.len() / 2]).await;
            // Closes by dropping.
        }
        Fault::HeadThenSilence => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            let _ = tcp.write_all(head.as_bytes()).await;
            until_closed(&mut tcp).await;
        }
        Fault::Endless => {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ntransfer-encoding: chunked\r\n\r\n"
            );
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let event = format!(
                "data: {}\n\n",
                json!({"id": "x", "object": "chat.completion.chunk", "created": 1, "model": "faulty",
                       "choices": [{"index": 0, "delta": {"content": "more "}, "finish_reason": null}]})
            );
            let chunk = format!("{:x}\r\n{event}\r\n", event.len());
            loop {
                if tcp.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Fault::Huge | Fault::HugeChunked => {
            let total = 100 * 1024 * 1024;
            let head = if matches!(fault, Fault::Huge) {
                format!("HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {total}\r\n\r\n")
            } else {
                format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ntransfer-encoding: chunked\r\n\r\n"
                )
            };
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            // One endless line: no JSON end, no SSE event boundary.
            let block = vec![b'a'; 64 * 1024];
            let mut framed = format!("{:x}\r\n", block.len()).into_bytes();
            framed.extend_from_slice(&block);
            framed.extend_from_slice(b"\r\n");
            let piece = if matches!(fault, Fault::Huge) {
                &block
            } else {
                &framed
            };
            for _ in 0..total / block.len() {
                if tcp.write_all(piece).await.is_err() {
                    return;
                }
            }
            // Sent it all: the proxy was meant to stop reading long before.
            until_closed(&mut tcp).await;
        }
        Fault::CloseMidStream => {
            let full = valid_body(streaming);
            let cut = &full[..full.len() / 2];
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{cut}\r\n",
                cut.len()
            );
            let _ = tcp.write_all(head.as_bytes()).await;
            // No terminating chunk: the connection just ends.
        }
        Fault::Dribble => {
            let body = valid_body(streaming);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {ct}\r\ncontent-length: {}\r\n\r\n",
                body.len()
            );
            if tcp.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            for byte in body.as_bytes() {
                if tcp.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            until_closed(&mut tcp).await;
        }
    }
}

// ---------------------------------------------------------------------------
// The proxy under test
// ---------------------------------------------------------------------------

/// Model `faulty` goes to the raw upstream, everything else to a healthy mock.
fn fault_config(faulty_url: &str, healthy_url: &str) -> String {
    format!(
        "policies: [policy.yaml]
upstreams:
  - name: faulty
    base_url: {faulty_url}
    connect_timeout_secs: 1
    read_timeout_secs: 1
    models: [faulty]
  - name: healthy
    base_url: {healthy_url}
    connect_timeout_secs: 1
    read_timeout_secs: 5
    default: true
max_upstream_body_bytes: 1048576
max_stream_secs: 2
request_timeout_secs: 8
header_read_timeout_secs: 1
request_body_timeout_secs: 1
max_header_bytes: 16384
"
    )
}

/// The keyword policy with the given stream mode.
fn policy(stream_mode: &str) -> String {
    format!(
        "{}stream: {{mode: {stream_mode}}}\n",
        keyword_policy("message")
    )
}

fn faulty_request(streaming: bool) -> Value {
    json!({"model": "faulty", "stream": streaming, "messages": [{"role": "user", "content": "hi"}]})
}

/// What a client must get for a fault.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// Status and `error.code` of an OpenAI error body.
    Error(u16, &'static str),
    /// A 200 event stream whose last event is an error with `upstream_stream_error`.
    StreamError,
}

struct Case {
    fault: Fault,
    streaming: bool,
    stream_mode: &'static str,
    expect: Expect,
    /// Whether the proxy (not the upstream) ends the upstream connection.
    proxy_closes: bool,
}

const fn case(fault: Fault, streaming: bool, expect: Expect, proxy_closes: bool) -> Case {
    Case {
        fault,
        streaming,
        stream_mode: "window",
        expect,
        proxy_closes,
    }
}

const STREAM_ERROR: Expect = Expect::StreamError;
const INVALID: Expect = Expect::Error(502, "upstream_invalid_response");
const TIMEOUT: Expect = Expect::Error(504, "upstream_timeout");
const UNAVAILABLE: Expect = Expect::Error(502, "upstream_unavailable");
const TOO_LARGE: Expect = Expect::Error(502, "upstream_response_too_large");

fn cases() -> Vec<Case> {
    let mut cases = vec![
        case(Fault::Refuse, false, UNAVAILABLE, false),
        case(Fault::Refuse, true, UNAVAILABLE, false),
        case(Fault::Silent, false, TIMEOUT, true),
        case(Fault::Silent, true, TIMEOUT, true),
        case(Fault::Garbage, false, INVALID, true),
        case(Fault::Garbage, true, INVALID, true),
        case(Fault::Truncated, false, INVALID, false),
        case(Fault::Truncated, true, STREAM_ERROR, false),
        case(Fault::HeadThenSilence, false, TIMEOUT, true),
        case(Fault::HeadThenSilence, true, STREAM_ERROR, true),
        case(Fault::Endless, true, STREAM_ERROR, true),
        case(Fault::Huge, false, TOO_LARGE, true),
        case(Fault::HugeChunked, false, TOO_LARGE, true),
        case(Fault::Huge, true, STREAM_ERROR, true),
        case(Fault::HugeChunked, true, STREAM_ERROR, true),
        case(Fault::CloseMidStream, false, INVALID, false),
        case(Fault::CloseMidStream, true, STREAM_ERROR, false),
        case(Fault::Dribble, false, TIMEOUT, true),
        case(Fault::Dribble, true, STREAM_ERROR, true),
    ];
    // Pass-through streams skip moderation but keep the same bounds.
    for fault in [
        Fault::Truncated,
        Fault::HeadThenSilence,
        Fault::Endless,
        Fault::CloseMidStream,
        Fault::Dribble,
    ] {
        let closes = !matches!(fault, Fault::Truncated | Fault::CloseMidStream);
        cases.push(Case {
            stream_mode: "passthrough",
            ..case(fault, true, STREAM_ERROR, closes)
        });
    }
    cases
}

/// Runs one case end to end; returns a description of the failure, if any.
async fn run_case(case: Case, healthy: Arc<MockUpstream>) {
    let label = format!(
        "{:?} stream={} mode={}",
        case.fault, case.streaming, case.stream_mode
    );
    let mut upstream = RawUpstream::start(case.fault, case.streaming).await;
    let proxy = Proxy::start(
        &fault_config(&upstream.base_url, &healthy.base_url()),
        &policy(case.stream_mode),
    )
    .await;
    let started = Instant::now();
    let answer = tokio::time::timeout(
        HANG,
        proxy.post("/v1/chat/completions", &faulty_request(case.streaming)),
    )
    .await
    .unwrap_or_else(|_| panic!("{label}: the proxy hung"));
    let took = started.elapsed();
    match case.expect {
        Expect::Error(status, code) => {
            let error = answer.assert_error(status, Some(code));
            assert!(error["type"].is_string(), "{label}: {error}");
        }
        Expect::StreamError => {
            assert_eq!(answer.status, 200, "{label}: {}", answer.text());
            assert_eq!(
                answer.header("content-type"),
                Some("text/event-stream"),
                "{label}"
            );
            let text = answer.text();
            let last = text
                .split("\n\n")
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .last()
                .unwrap_or_else(|| panic!("{label}: empty stream"));
            let event: Value = last
                .strip_prefix("data: ")
                .and_then(|d| serde_json::from_str(d).ok())
                .unwrap_or_else(|| panic!("{label}: last event is not JSON: {last:?}"));
            assert_eq!(
                event["error"]["code"], "upstream_stream_error",
                "{label}: {event}"
            );
            assert!(event["error"]["message"].is_string(), "{label}: {event}");
        }
    }
    // Bounded: read timeout 1 s, stream bound 2 s, request bound 8 s.
    assert!(took < Duration::from_secs(6), "{label}: took {took:?}");
    if case.proxy_closes {
        upstream
            .assert_closed_by_proxy(Duration::from_secs(5))
            .await;
    }
    let normal = tokio::time::timeout(
        HANG,
        proxy.post("/v1/chat/completions", &common::chat("hello")),
    )
    .await
    .unwrap_or_else(|_| panic!("{label}: the proxy hung on a normal request after the fault"));
    assert_eq!(normal.status, 200, "{label}: {}", normal.text());
    assert_eq!(normal.chat_content(), "Hello from the mock.", "{label}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_upstream_fault_ends_in_a_bounded_openai_error() {
    let healthy = Arc::new(MockUpstream::start().await);
    let runs: Vec<_> = cases()
        .into_iter()
        .map(|case| tokio::spawn(run_case(case, Arc::clone(&healthy))))
        .collect();
    let mut failures = Vec::new();
    for run in runs {
        if let Err(e) = run.await {
            failures.push(e.to_string());
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A client that reads the start of an endless stream and leaves: the
/// proxy must stop reading the upstream and close that connection.
#[tokio::test]
async fn a_client_leaving_an_endless_stream_closes_the_upstream_connection() {
    for mode in ["window", "passthrough"] {
        let healthy = MockUpstream::start().await;
        let mut upstream = RawUpstream::start(Fault::Endless, true).await;
        let config = fault_config(&upstream.base_url, &healthy.base_url())
            .replace("max_stream_secs: 2", "max_stream_secs: 600");
        let proxy = Proxy::start(&config, &policy(mode)).await;
        let response = proxy
            .request(reqwest::Method::POST, "/v1/chat/completions")
            .header("content-type", "application/json")
            .body(faulty_request(true).to_string())
            .send()
            .await
            .unwrap();
        let mut response = response;
        let first = tokio::time::timeout(HANG, response.chunk())
            .await
            .expect("first chunk in time")
            .unwrap();
        assert!(first.is_some(), "{mode}: no first chunk");
        drop(response);
        upstream
            .assert_closed_by_proxy(Duration::from_secs(5))
            .await;
    }
}

// ---------------------------------------------------------------------------
// Slow and silent clients
// ---------------------------------------------------------------------------

async fn slow_client_proxy() -> (Proxy, SocketAddr, MockUpstream) {
    let healthy = MockUpstream::start().await;
    // Requests of these tests never reach the upstream; any unused port will do.
    let config = fault_config(&closed_port().url, &healthy.base_url());
    let proxy = Proxy::start(&config, &policy("window")).await;
    let addr = proxy.url.trim_start_matches("http://").parse().unwrap();
    (proxy, addr, healthy)
}

/// Reads whatever the proxy sends until it closes; returns it and when.
async fn read_until_closed(tcp: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let result = tokio::time::timeout(HANG, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(result.is_ok(), "the proxy never closed the connection");
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

const CHAT_BODY: &str = r#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;

fn chat_request_head(length: usize) -> String {
    format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: proxy\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_header_timeout() {
    let (_proxy, addr, _mock) = slow_client_proxy().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let (_, took) = read_until_closed(&mut tcp).await;
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn a_client_dribbling_its_headers_is_cut_off() {
    let (_proxy, addr, _mock) = slow_client_proxy().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let head = chat_request_head(CHAT_BODY.len());
    let started = Instant::now();
    // One byte every 200 ms: the whole head would take ~20 s.
    for byte in head.as_bytes() {
        if tcp.write_all(&[*byte]).await.is_err() {
            break;
        }
        let mut probe = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(200), tcp.read(&mut probe)).await {
            Err(_) => continue,
            Ok(_) => break,
        }
    }
    let (_, _) = read_until_closed(&mut tcp).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn a_client_dribbling_its_body_gets_408() {
    let (_proxy, addr, _mock) = slow_client_proxy().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(chat_request_head(CHAT_BODY.len()).as_bytes())
        .await
        .unwrap();
    tcp.write_all(&CHAT_BODY.as_bytes()[..5]).await.unwrap();
    let started = Instant::now();
    let mut buf = vec![0u8; 8192];
    let n = tokio::time::timeout(HANG, tcp.read(&mut buf))
        .await
        .expect("an answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("request_body_timeout"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_a_busy_one_is_served() {
    let (_proxy, addr, _mock) = slow_client_proxy().await;
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let request = "GET /healthz HTTP/1.1\r\nhost: proxy\r\n\r\n";
    // Three requests on one connection, each sooner than the header timeout.
    for _ in 0..3 {
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = tokio::time::timeout(HANG, tcp.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        let answer = String::from_utf8_lossy(&buf[..n]).into_owned();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.contains(r#"{"status":"ok"}"#), "{answer}");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
    // Then idle: closed after about the header timeout.
    let (rest, took) = read_until_closed(&mut tcp).await;
    assert!(!rest.contains("HTTP/1.1 200"), "{rest}");
    assert!(took < Duration::from_secs(4), "took {took:?}");
}

#[tokio::test]
async fn headers_beyond_the_limit_get_431_and_keep_alive_clients_still_work() {
    let (proxy, _addr, _mock) = slow_client_proxy().await;
    let big = "x".repeat(20 * 1024);
    let answer = proxy.get_with("/healthz", &[("x-big", &big)]).await;
    assert_eq!(answer.status, 431);
    for _ in 0..3 {
        let normal = proxy
            .post("/v1/chat/completions", &common::chat("hello"))
            .await;
        assert_eq!(normal.status, 200, "{}", normal.text());
    }
}

#[tokio::test]
async fn a_request_slower_than_request_timeout_gets_504() {
    let healthy = MockUpstream::start().await;
    healthy.reply(common::Reply::chat("late").delay(Duration::from_secs(4)));
    let config = common::basic_config(&healthy.base_url()) + "request_timeout_secs: 1\n";
    let proxy = Proxy::start(&config, &policy("window")).await;
    let started = Instant::now();
    let answer = tokio::time::timeout(
        HANG,
        proxy.post("/v1/chat/completions", &common::chat("hi")),
    )
    .await
    .unwrap();
    answer.assert_error(504, Some("request_timeout"));
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// The accept loop detects HTTP/2 itself (with a timeout): h2c clients
/// still work.
#[tokio::test]
async fn http2_prior_knowledge_clients_are_still_served() {
    let (proxy, _addr, _mock) = slow_client_proxy().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    for _ in 0..2 {
        let response = tokio::time::timeout(
            HANG,
            client
                .post(format!("{}/v1/chat/completions", proxy.url))
                .header("content-type", "application/json")
                .body(common::chat("hello").to_string())
                .send(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200);
    }
}

/// Sends one request on an HTTP/2 connection and reads the whole answer;
/// returns its status and body.
async fn h2_request(
    client: &mut h2::client::SendRequest<bytes::Bytes>,
    method: &str,
    url: &str,
    body: Option<&str>,
) -> (u16, String) {
    let request = axum::http::Request::builder()
        .method(method)
        .uri(url)
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, body.is_none()).unwrap();
    if let Some(body) = body {
        send.send_data(bytes::Bytes::from(body.to_string()), true)
            .unwrap();
    }
    let response = tokio::time::timeout(HANG, response).await.unwrap().unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut text = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        text.extend_from_slice(&chunk);
    }
    (status, String::from_utf8_lossy(&text).into_owned())
}

/// HTTP/2 has no header read timer and its pings only find dead peers: a
/// client that answers pings (as every HTTP/2 client does) but sends no
/// request must still be disconnected, like an idle HTTP/1 keep-alive
/// connection; a connection whose request outlasts that timeout is not.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_but_a_busy_one_is_served() {
    let (_proxy, addr, mock) = slow_client_proxy().await;
    // The answer takes longer than header_read_timeout_secs (1 s).
    mock.reply(common::Reply::chat("late").delay(Duration::from_millis(2500)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    let connection = tokio::spawn(async move {
        let _ = connection.await;
        Instant::now()
    });
    let (status, body) = h2_request(
        &mut client,
        "POST",
        &format!("http://{addr}/v1/chat/completions"),
        Some(CHAT_BODY),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("late"), "{body}");
    let (status, body) =
        h2_request(&mut client, "GET", &format!("http://{addr}/healthz"), None).await;
    assert_eq!(status, 200, "{body}");
    let idle_from = Instant::now();
    // `client` stays alive: the client side never closes the connection.
    let closed_at = tokio::time::timeout(Duration::from_secs(6), connection)
        .await
        .expect("the proxy closes an idle HTTP/2 connection")
        .unwrap();
    let idle = closed_at - idle_from;
    assert!(idle >= Duration::from_millis(500), "closed after {idle:?}");
    drop(client);
}

/// A client that asks for a large answer and never reads it is
/// disconnected after `client_write_timeout_secs`, instead of pinning the
/// connection and the buffered answer forever.
#[tokio::test]
async fn a_client_that_stops_reading_is_disconnected() {
    let healthy = MockUpstream::start().await;
    let total = 40 * 1024 * 1024;
    healthy.reply_on(
        "/v1/models",
        common::Reply::raw(200, "application/json", vec![b' '; total]),
    );
    let config = common::basic_config(&healthy.base_url())
        + "client_write_timeout_secs: 1\nmax_upstream_body_bytes: 67108864\n";
    let proxy = Proxy::start(&config, &policy("window")).await;
    let addr: SocketAddr = proxy.url.trim_start_matches("http://").parse().unwrap();
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    tcp.write_all(b"GET /v1/models HTTP/1.1\r\nhost: proxy\r\n\r\n")
        .await
        .unwrap();
    // Not reading: socket buffers (a few MB) fill, then the proxy's writes stall.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let mut received = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    tokio::time::timeout(HANG, async {
        loop {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received += n,
            }
        }
    })
    .await
    .expect("the proxy closed the connection");
    assert!(
        received < total,
        "the whole answer arrived ({received} bytes): the stalled connection was kept"
    );
}
