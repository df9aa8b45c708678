//! Shared harness of the integration tests: an in-process mock upstream that
//! records every request it receives and answers with configurable canned
//! replies, and a helper that starts the real Palisade app on a loopback
//! port with a configuration and policy given as YAML text.
//!
//! Each test binary uses only part of this module.
#![allow(dead_code, reason = "each test binary uses part of the harness")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test harness: a failure here is a failed test"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::any;
use serde_json::{Value, json};

use palisade::config::{self, EnvOverrides};
use palisade::proxy::ProxyState;
use palisade::proxy::policies::Policies;

// ---------------------------------------------------------------------------
// Mock upstream
// ---------------------------------------------------------------------------

/// One request as the mock upstream received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// HTTP method.
    pub method: String,
    /// Path and query, e.g. `/v1/files?purpose=x`.
    pub path: String,
    /// Request headers.
    pub headers: HeaderMap,
    /// Raw body bytes.
    pub body: Bytes,
}

impl Recorded {
    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "upstream body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// A canned answer of the mock upstream.
#[derive(Debug, Clone)]
pub struct Reply {
    status: StatusCode,
    headers: Vec<(String, String)>,
    body: Bytes,
    delay: Duration,
}

impl Reply {
    /// A JSON body with the given status.
    pub fn json(status: u16, body: Value) -> Self {
        Self::raw(status, "application/json", body.to_string())
    }

    /// Any body with the given status and content type.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            status: StatusCode::from_u16(status).expect("valid status"),
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    /// A chat completion whose answer is `content`.
    pub fn chat(content: &str) -> Self {
        Self::json(200, chat_completion("mock-model", content))
    }

    /// A legacy text completion whose answer is `text`.
    pub fn completion(text: &str) -> Self {
        Self::json(200, text_completion("mock-model", text))
    }

    /// A server-sent-event stream of chat chunks carrying `pieces`, ending with `[DONE]`.
    pub fn chat_stream(pieces: &[&str]) -> Self {
        Self::raw(200, "text/event-stream", sse_chat(pieces))
    }

    /// Adds a response header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Waits this long before answering.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct MockInner {
    requests: Vec<Recorded>,
    replies: HashMap<String, Reply>,
    fallback: Option<Reply>,
}

/// An OpenAI-compatible stand-in on a loopback port. By default it answers
/// every known endpoint with a small canned response; [`MockUpstream::reply`]
/// and [`MockUpstream::reply_on`] replace that.
#[derive(Clone)]
pub struct MockUpstream {
    inner: Arc<Mutex<MockInner>>,
    /// `http://127.0.0.1:<port>`
    pub addr: SocketAddr,
}

impl MockUpstream {
    /// Starts the mock.
    pub async fn start() -> Self {
        let inner = Arc::new(Mutex::new(MockInner::default()));
        let app = Router::new()
            .fallback(any(mock_handler))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { inner, addr }
    }

    /// The base URL an upstream config uses (`.../v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Answers every request with `reply` from now on.
    pub fn reply(&self, reply: Reply) {
        self.inner.lock().unwrap().fallback = Some(reply);
    }

    /// Answers requests for `path` (e.g. `/v1/chat/completions`) with `reply`.
    pub fn reply_on(&self, path: &str, reply: Reply) {
        self.inner
            .lock()
            .unwrap()
            .replies
            .insert(path.into(), reply);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap().requests.clone()
    }

    /// How many requests were received.
    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().requests.len()
    }

    /// The only request received; fails if there were none or several.
    pub fn single(&self) -> Recorded {
        let requests = self.requests();
        assert_eq!(
            requests.len(),
            1,
            "expected exactly one upstream request, got {requests:#?}"
        );
        requests.into_iter().next().unwrap()
    }

    /// Waits until at least `n` requests arrived (for concurrency tests).
    pub async fn wait_for(&self, n: usize) {
        for _ in 0..500 {
            if self.count() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the mock upstream never received {n} requests");
    }
}

async fn mock_handler(State(inner): State<Arc<Mutex<MockInner>>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let recorded = Recorded {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers,
        body,
    };
    let reply = {
        let mut inner = inner.lock().unwrap();
        inner.requests.push(recorded.clone());
        inner
            .replies
            .get(parts.uri.path())
            .or(inner.fallback.as_ref())
            .cloned()
    };
    let reply = reply.unwrap_or_else(|| default_reply(&recorded));
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = reply.status;
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}

/// What the mock answers when no reply is configured: an echo that names
/// the upstream's port, in the endpoint's shape.
fn default_reply(request: &Recorded) -> Reply {
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let model = body["model"].as_str().unwrap_or("mock-model").to_string();
    let streaming = body["stream"].as_bool() == Some(true);
    match request.path.split('?').next().unwrap_or("") {
        "/v1/chat/completions" if streaming => {
            Reply::chat_stream(&["Hello", " from", " the", " mock", "."])
        }
        "/v1/chat/completions" => Reply::json(200, chat_completion(&model, "Hello from the mock.")),
        "/v1/completions" => Reply::json(200, text_completion(&model, "Hello from the mock.")),
        "/v1/embeddings" => Reply::json(
            200,
            json!({
                "object": "list",
                "data": [{"object": "embedding", "index": 0, "embedding": [0.1, 0.2, 0.3]}],
                "model": model,
                "usage": {"prompt_tokens": 1, "total_tokens": 1}
            }),
        ),
        "/v1/models" => Reply::json(
            200,
            json!({"object": "list", "data": [{"id": "mock-model", "object": "model", "created": 0, "owned_by": "mock"}]}),
        ),
        _ => Reply::json(
            404,
            json!({"error": {"message": "mock: no such path", "type": "invalid_request_error", "param": null, "code": null}}),
        ),
    }
}

/// A chat completion body answering `content`.
pub fn chat_completion(model: &str, content: &str) -> Value {
    json!({
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "logprobs": null,
            "finish_reason": "stop"
        }],
        "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    })
}

/// A legacy completion body answering `text`.
pub fn text_completion(model: &str, text: &str) -> Value {
    json!({
        "id": "cmpl-mock",
        "object": "text_completion",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop"}]
    })
}

/// An SSE body of chat chunks, ending with `data: [DONE]`.
pub fn sse_chat(pieces: &[&str]) -> String {
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": 1, "model": "mock-model",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        })
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    events.extend(
        pieces
            .iter()
            .map(|p| chunk(json!({"content": p}), Value::Null)),
    );
    events.push(chunk(json!({}), json!("stop")));
    let mut out: String = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    out.push_str("data: [DONE]\n\n");
    out
}

// ---------------------------------------------------------------------------
// The proxy under test
// ---------------------------------------------------------------------------

/// A running Palisade app and a client for it.
pub struct Proxy {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// The state the app runs with (for metrics and policy inspection).
    pub state: ProxyState,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// The shipped default policy.
pub fn default_policy_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.yaml")
}

/// A minimal configuration: `policies: [policy.yaml]` and one default
/// upstream pointing at `upstream_url`, with short timeouts.
pub fn basic_config(upstream_url: &str) -> String {
    format!(
        "policies: [policy.yaml]
upstreams:
  - name: mock
    base_url: {upstream_url}
    connect_timeout_secs: 1
    read_timeout_secs: 5
    default: true
"
    )
}

/// A policy that blocks anything containing `forbidden-word`, with the
/// given refusal mode.
pub fn keyword_policy(mode: &str) -> String {
    format!(
        "version: 1
name: test-keywords
refusal:
  mode: {mode}
  message: \"Refused by the test policy.\"
rules:
  - id: forbidden-word
    category: test
    applies_to: both
    keywords: [forbidden-word]
    action: block
"
    )
}

/// Builder for a [`Proxy`]: a config file text and extra files next to it.
pub struct ProxyBuilder {
    config: String,
    files: Vec<(String, String)>,
    upstream_keys: Vec<(String, String)>,
}

impl Proxy {
    /// Starts with `config_yaml` and `policy_yaml` written as `policy.yaml`
    /// next to it.
    pub async fn start(config_yaml: &str, policy_yaml: &str) -> Self {
        Self::builder(config_yaml)
            .file("policy.yaml", policy_yaml)
            .start()
            .await
    }

    /// Starts with [`basic_config`] against `mock` and the shipped default policy.
    pub async fn default_policy(mock: &MockUpstream) -> Self {
        let default = default_policy_path();
        let config = basic_config(&mock.base_url()).replace(
            "policies: [policy.yaml]",
            &format!("policies: [{}]", default.display()),
        );
        Self::builder(&config).start().await
    }

    /// Starts with [`basic_config`] against `mock` and `policy_yaml`.
    pub async fn with_policy(mock: &MockUpstream, policy_yaml: &str) -> Self {
        Self::start(&basic_config(&mock.base_url()), policy_yaml).await
    }

    /// A builder for more files and upstream keys.
    pub fn builder(config_yaml: &str) -> ProxyBuilder {
        ProxyBuilder {
            config: config_yaml.to_string(),
            files: Vec::new(),
            upstream_keys: Vec::new(),
        }
    }

    /// `POST path` with a JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> Answer {
        self.send(
            self.client
                .post(format!("{}{path}", self.url))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    /// `POST path` with a JSON body and extra headers.
    pub async fn post_with(&self, path: &str, body: &Value, headers: &[(&str, &str)]) -> Answer {
        let mut request = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// `POST path` with any body and content type (`None` = no header).
    pub async fn post_raw(&self, path: &str, content_type: Option<&str>, body: Vec<u8>) -> Answer {
        let mut request = self.client.post(format!("{}{path}", self.url)).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        self.send(request).await
    }

    /// `GET path` with extra headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.client.get(format!("{}{path}", self.url));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Answer {
        self.get_with(path, &[]).await
    }

    /// Any request built on this proxy's client.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, format!("{}{path}", self.url))
    }

    /// Sends a request and reads the whole answer.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request
            .send()
            .await
            .expect("the proxy answered (a dropped connection means a panic or crash)");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("the proxy sent a whole body");
        Answer {
            status,
            headers,
            body,
        }
    }

    /// The Prometheus exposition text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics").await.text()
    }
}

impl ProxyBuilder {
    /// Writes `contents` as `name` next to the config file.
    pub fn file(mut self, name: &str, contents: &str) -> Self {
        self.files.push((name.into(), contents.into()));
        self
    }

    /// Sets the API key of the upstream called `upstream` (what `api_key_env`
    /// would resolve to, without touching the process environment).
    pub fn upstream_key(mut self, upstream: &str, key: &str) -> Self {
        self.upstream_keys.push((upstream.into(), key.into()));
        self
    }

    /// Loads the configuration and policies through the real loaders and
    /// serves the app on an ephemeral loopback port.
    pub async fn start(self) -> Proxy {
        let dir = tempfile::tempdir().unwrap();
        for (name, contents) in &self.files {
            std::fs::write(dir.path().join(name), contents).unwrap();
        }
        let path = dir.path().join("palisade.yaml");
        std::fs::write(&path, &self.config).unwrap();
        let mut config = config::load(Some(&path), &EnvOverrides::default())
            .unwrap_or_else(|e| panic!("test config does not load: {e}\n{}", self.config));
        for (name, key) in &self.upstream_keys {
            let upstream = config
                .upstreams
                .iter_mut()
                .find(|u| &u.name == name)
                .unwrap_or_else(|| panic!("no upstream `{name}` in the test config"));
            upstream.api_key = Some(key.clone());
        }
        let policies = Policies::load(&config).unwrap_or_else(|e| panic!("test policy: {e}"));
        let state = ProxyState::with_policies(config, policies).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // The real accept loop, so connection limits apply in every test.
        tokio::spawn(palisade::server::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        Proxy {
            url: format!("http://{addr}"),
            state,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            _dir: dir,
        }
    }
}

/// The proxy's answer, read completely.
#[derive(Debug)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body bytes.
    pub body: Bytes,
}

impl Answer {
    /// The body parsed as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "proxy answer ({}) is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an OpenAI-shaped error with this status and `error.code`
    /// (`None` = code null), and returns the `error` object.
    pub fn assert_error(&self, status: u16, code: Option<&str>) -> Value {
        assert_eq!(self.status, status, "status of {}", self.text());
        let body = self.json();
        let error = body
            .get("error")
            .unwrap_or_else(|| panic!("no `error` object in {body}"))
            .clone();
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without message: {body}"
        );
        assert!(error["type"].is_string(), "error without type: {body}");
        assert_eq!(error["code"].as_str(), code, "error code in {body}");
        error
    }

    /// The first choice's assistant text of a chat completion.
    pub fn chat_content(&self) -> String {
        self.json()["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_else(|| panic!("no chat content in {}", self.text()))
            .to_string()
    }
}

/// A chat request body with one user message.
pub fn chat(content: &str) -> Value {
    json!({"model": "mock-model", "messages": [{"role": "user", "content": content}]})
}

/// Removes the leak canary the default policy plants at the end of the
/// first system message (`\n\n[session reference: pls-<16 hex>]`) and
/// returns its token.
pub fn strip_canary(request: &mut Value) -> Option<String> {
    let messages = request.get_mut("messages")?.as_array_mut()?;
    let system = messages
        .iter_mut()
        .find(|m| m["role"] == "system" || m["role"] == "developer")?;
    let text = system["content"].as_str()?.to_string();
    let (before, token) = text.rsplit_once("\n\n[session reference: ")?;
    let token = token.strip_suffix(']')?.to_string();
    system["content"] = Value::String(before.to_string());
    Some(token)
}

/// A loopback port that refuses connections for as long as this value
/// lives: the socket is bound but never listens. A port bound and then
/// released could be handed to another test's upstream meanwhile (tests
/// run in parallel), which then answers instead of refusing.
pub struct ClosedPort {
    _reserved: tokio::net::TcpSocket,
    /// Its `http://127.0.0.1:<port>/v1` base URL.
    pub url: String,
}

/// A loopback URL nothing listens on; keep the value while the URL is used.
pub fn closed_port() -> ClosedPort {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    ClosedPort {
        _reserved: socket,
        url: format!("http://{addr}/v1"),
    }
}

/// The value of one sample line of the metrics text whose name and labels
/// all appear in it, e.g. `metric_value(&text, "palisade_requests_total", &["status=\"200\""])`.
pub fn metric_value(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|lab| l.contains(lab)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
