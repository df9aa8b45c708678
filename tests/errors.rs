//! Every failure is an OpenAI-shaped error with the right status: bad client
//! bodies (4xx, never forwarded), and upstreams that are down, slow, failing
//! or answering garbage (5xx). Odd but valid input never crashes the server.

mod common;

use std::time::Duration;

use common::{MockUpstream, Proxy, Reply, basic_config, closed_port, keyword_policy};
use serde_json::{Value, json};

/// One bad request and the error it must produce.
struct BadRequest {
    name: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    code: Option<&'static str>,
    /// Fragment the error message must contain.
    says: &'static str,
    /// Expected `error.param`; `None` = not checked.
    param: Option<Option<&'static str>>,
}

fn bad(
    name: &'static str,
    path: &'static str,
    body: &[u8],
    says: &'static str,
    param: Option<&'static str>,
) -> BadRequest {
    BadRequest {
        name,
        path,
        content_type: Some("application/json"),
        body: body.to_vec(),
        status: 400,
        code: None,
        says,
        param: Some(param),
    }
}

fn bad_requests() -> Vec<BadRequest> {
    const CHAT: &str = "/v1/chat/completions";
    let deep = format!(
        "{{\"model\": \"m\", \"messages\": [{{\"role\": \"user\", \"content\": \"hi\"}}], \"x\": {}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    vec![
        bad(
            "truncated JSON",
            CHAT,
            br#"{"model": "m", "messages": ["#,
            "not valid JSON",
            Some("messages"),
        ),
        bad(
            "trailing garbage",
            CHAT,
            br#"{"model": "m", "messages": [{"role": "user", "content": "hi"}]} x"#,
            "not valid JSON",
            None,
        ),
        bad("empty body", CHAT, b"", "empty", None),
        bad("whitespace body", CHAT, b" \n ", "empty", None),
        bad("array body", CHAT, b"[1, 2]", "invalid request", None),
        bad(
            "missing model",
            CHAT,
            br#"{"messages": [{"role": "user", "content": "hi"}]}"#,
            "model",
            Some("model"),
        ),
        bad(
            "missing messages",
            CHAT,
            br#"{"model": "m"}"#,
            "messages",
            Some("messages"),
        ),
        bad(
            "messages not a list",
            CHAT,
            br#"{"model": "m", "messages": "hi"}"#,
            "messages",
            Some("messages"),
        ),
        bad(
            "role not a string",
            CHAT,
            br#"{"model": "m", "messages": [{"role": 3, "content": "hi"}]}"#,
            "messages[0].role",
            Some("messages[0].role"),
        ),
        bad(
            "empty messages",
            CHAT,
            br#"{"model": "m", "messages": []}"#,
            "at least one message",
            Some("messages"),
        ),
        bad(
            "stream not a bool",
            CHAT,
            br#"{"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "hi"}]}"#,
            "stream",
            Some("stream"),
        ),
        bad(
            "tool_calls not a list",
            CHAT,
            br#"{"model": "m", "messages": [{"role": "assistant", "tool_calls": "x"}]}"#,
            "tool_calls",
            Some("messages[0].tool_calls"),
        ),
        BadRequest {
            param: None, // the path to where the parser gave up
            ..bad(
                "nesting deeper than the parser allows",
                CHAT,
                deep.as_bytes(),
                "recursion limit",
                None,
            )
        },
        bad(
            "completion without model",
            "/v1/completions",
            br#"{"prompt": "hi"}"#,
            "model",
            Some("model"),
        ),
        bad(
            "embeddings without input",
            "/v1/embeddings",
            br#"{"model": "m"}"#,
            "input",
            Some("input"),
        ),
        bad(
            "invalid UTF-8",
            CHAT,
            b"{\"model\": \"m\xff\xfe\", \"messages\": []}",
            "not valid UTF-8",
            None,
        ),
        bad(
            "invalid UTF-8 embeddings",
            "/v1/embeddings",
            b"{\"model\": \"m\", \"input\": \"\xc3\x28\"}",
            "not valid UTF-8",
            None,
        ),
        BadRequest {
            content_type: Some("text/plain"),
            status: 415,
            code: Some("unsupported_media_type"),
            ..bad(
                "text/plain",
                CHAT,
                br#"{"model": "m", "messages": []}"#,
                "text/plain",
                None,
            )
        },
        BadRequest {
            content_type: None,
            status: 415,
            code: Some("unsupported_media_type"),
            ..bad(
                "no content type",
                "/v1/embeddings",
                br#"{"model": "m", "input": "x"}"#,
                "application/json",
                None,
            )
        },
        BadRequest {
            content_type: Some("application/x-www-form-urlencoded"),
            status: 415,
            code: Some("unsupported_media_type"),
            ..bad(
                "form body",
                "/v1/completions",
                b"model=m&prompt=hi",
                "Content-Type: application/json",
                None,
            )
        },
        BadRequest {
            status: 413,
            code: Some("request_too_large"),
            ..bad(
                "over max_body_bytes",
                CHAT,
                &oversized_chat(),
                "16384",
                None,
            )
        },
    ]
}

/// A valid chat request of about 20 KB (the tests' limit is 16 KiB).
fn oversized_chat() -> Vec<u8> {
    common::chat(&"a".repeat(20_000)).to_string().into_bytes()
}

async fn small_limit_proxy(mock: &MockUpstream) -> Proxy {
    let config = format!("{}max_body_bytes: 16384\n", basic_config(&mock.base_url()));
    Proxy::start(&config, &keyword_policy("message")).await
}

#[tokio::test]
async fn bad_client_bodies_are_openai_shaped_4xx_and_never_forwarded() {
    let mock = MockUpstream::start().await;
    let proxy = small_limit_proxy(&mock).await;
    for case in bad_requests() {
        let got = proxy
            .post_raw(case.path, case.content_type, case.body.clone())
            .await;

        let error = got.assert_error(case.status, case.code);
        assert_eq!(error["type"], "invalid_request_error", "{}", case.name);
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(case.says),
            "{}: message {message:?} should mention {:?}",
            case.name,
            case.says
        );
        if let Some(param) = case.param {
            assert_eq!(error["param"].as_str(), param, "{}: {error}", case.name);
        }
    }
    assert_eq!(mock.count(), 0, "a bad request reached the upstream");
}

#[tokio::test]
async fn json_content_types_with_parameters_or_suffixes_are_accepted() {
    let mock = MockUpstream::start().await;
    let proxy = small_limit_proxy(&mock).await;
    let body = common::chat("hi").to_string().into_bytes();
    for content_type in [
        "application/json; charset=utf-8",
        "Application/JSON",
        "application/vnd.openai+json",
    ] {
        let got = proxy
            .post_raw("/v1/chat/completions", Some(content_type), body.clone())
            .await;

        assert_eq!(got.status, 200, "{content_type}: {}", got.text());
    }
    assert_eq!(mock.count(), 3);
}

#[tokio::test]
async fn an_oversized_chunked_body_is_413_too() {
    let mock = MockUpstream::start().await;
    let proxy = small_limit_proxy(&mock).await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = oversized_chat()
        .chunks(256)
        .map(|c| Ok(c.to_vec()))
        .collect();
    let request = proxy
        .request(reqwest::Method::POST, "/v1/chat/completions")
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )));

    let got = proxy.send(request).await;

    got.assert_error(413, Some("request_too_large"));
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn an_oversized_passthrough_body_is_413() {
    let mock = MockUpstream::start().await;
    let config = format!(
        "{}max_body_bytes: 16384\npassthrough_paths: [/v1/files]\n",
        basic_config(&mock.base_url())
    );
    let proxy = Proxy::start(&config, &keyword_policy("message")).await;

    let got = proxy
        .post_raw(
            "/v1/files",
            Some("application/octet-stream"),
            vec![b'x'; 20_000],
        )
        .await;

    got.assert_error(413, Some("request_too_large"));
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn odd_but_valid_requests_never_crash_the_server() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::default_policy(&mock).await;
    let user =
        |content: Value| json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let cases: Vec<(&str, &str, Value)> = vec![
        ("null content", "/v1/chat/completions", user(Value::Null)),
        ("number content", "/v1/chat/completions", user(json!(42))),
        (
            "object content",
            "/v1/chat/completions",
            user(json!({"x": 1})),
        ),
        (
            "parts without text",
            "/v1/chat/completions",
            user(json!([{"type": "image_url"}, {}, {"text": null}])),
        ),
        (
            "empty string content",
            "/v1/chat/completions",
            user(json!("")),
        ),
        (
            "unicode content",
            "/v1/chat/completions",
            user(json!("héllo 👋 \u{202e}abc \u{200b}zero-width \u{e0041}")),
        ),
        (
            "null system content",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "system", "content": null}, {"role": "user", "content": "hi"}]}),
        ),
        (
            "system content parts",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "developer", "content": [{"type": "text", "text": "Be brief."}]}, {"role": "user", "content": "hi"}]}),
        ),
        (
            "unknown role",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "narrator", "content": "hi"}]}),
        ),
        (
            "empty model",
            "/v1/chat/completions",
            json!({"model": "", "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "tool call without function",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}, {"function": null}, {"function": {"arguments": null}}]}]}),
        ),
        (
            "tools of odd types",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tools": [1, "x", null, {"type": "function"}, {"function": {"description": ""}}]}),
        ),
        (
            "token prompt",
            "/v1/completions",
            json!({"model": "m", "prompt": [[1, 2, 3], [4]]}),
        ),
        (
            "null prompt",
            "/v1/completions",
            json!({"model": "m", "prompt": null}),
        ),
        ("no prompt", "/v1/completions", json!({"model": "m"})),
        (
            "token input",
            "/v1/embeddings",
            json!({"model": "m", "input": [1, 2, 3]}),
        ),
        (
            "mixed input",
            "/v1/embeddings",
            json!({"model": "m", "input": ["a", 1, null, {"x": "y"}]}),
        ),
        (
            "empty input list",
            "/v1/embeddings",
            json!({"model": "m", "input": []}),
        ),
    ];
    for (name, path, body) in cases {
        let got = proxy.post(path, &body).await;

        assert_eq!(got.status, 200, "{name}: {}", got.text());
        assert!(got.json().is_object(), "{name}");
    }
    assert_eq!(mock.count(), 18);
}

#[tokio::test]
async fn an_unreachable_upstream_is_502_without_details() {
    let closed = closed_port();
    let proxy = Proxy::start(&basic_config(&closed.url), &keyword_policy("message")).await;

    let chat = proxy
        .post("/v1/chat/completions", &common::chat("hi"))
        .await;
    let models = proxy.get("/v1/models").await;

    for got in [chat, models] {
        let error = got.assert_error(502, Some("upstream_unavailable"));
        assert_eq!(error["type"], "upstream_error");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains("`mock`"), "{message}");
        assert!(
            !message.contains("127.0.0.1"),
            "leaks the address: {message}"
        );
        assert!(
            !message.to_lowercase().contains("refused"),
            "leaks the cause: {message}"
        );
    }
}

#[tokio::test]
async fn an_upstream_slower_than_the_read_timeout_is_504() {
    let mock = MockUpstream::start().await;
    mock.reply(Reply::chat("too late").delay(Duration::from_millis(1500)));
    let config =
        basic_config(&mock.base_url()).replace("read_timeout_secs: 5", "read_timeout_secs: 1");
    let proxy = Proxy::start(&config, &keyword_policy("message")).await;

    let body = common::chat("hi");
    let (chat, models) = tokio::join!(
        proxy.post("/v1/chat/completions", &body),
        proxy.get("/v1/models"),
    );

    for got in [chat, models] {
        let error = got.assert_error(504, Some("upstream_timeout"));
        assert_eq!(error["type"], "upstream_error");
    }
}

#[tokio::test]
async fn upstream_error_statuses_and_bodies_are_passed_through() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, &keyword_policy("message")).await;
    let cases = [
        (
            500,
            json!({"error": {"message": "The server had an error", "type": "server_error", "param": null, "code": null}}),
        ),
        (
            503,
            json!({"error": {"message": "Overloaded", "type": "server_error", "param": null, "code": "overloaded"}}),
        ),
        (
            400,
            json!({"error": {"message": "Invalid 'temperature'", "type": "invalid_request_error", "param": "temperature", "code": "invalid_value"}}),
        ),
        (
            404,
            json!({"error": {"message": "The model `m` does not exist", "type": "invalid_request_error", "param": null, "code": "model_not_found"}}),
        ),
    ];
    for (status, body) in cases {
        mock.reply(Reply::json(status, body.clone()));

        let got = proxy
            .post("/v1/chat/completions", &common::chat("hi"))
            .await;

        assert_eq!(got.status, status, "{}", got.text());
        assert_eq!(got.json(), body);
        assert_eq!(got.header("content-type"), Some("application/json"));
    }
}

#[tokio::test]
async fn a_non_openai_upstream_error_keeps_its_status_in_an_openai_envelope() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, &keyword_policy("message")).await;
    let cases = [
        (
            502,
            "text/html",
            "<html>bad gateway</html>",
            "upstream_error",
        ),
        (500, "text/plain", "", "upstream_error"),
        (
            404,
            "application/json",
            r#"{"detail":"Not Found"}"#,
            "invalid_request_error",
        ),
    ];
    for (status, content_type, body, kind) in cases {
        for stream in [false, true] {
            mock.reply(Reply::raw(status, content_type, body));
            let mut request = common::chat("hi");
            request["stream"] = json!(stream);

            let got = proxy.post("/v1/chat/completions", &request).await;

            let error = got.assert_error(status, Some("upstream_http_error"));
            assert_eq!(error["type"], kind, "{body}");
            let message = error["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(&format!("HTTP {status}")) && message.contains(body),
                "{message}"
            );
            assert_eq!(got.header("content-type"), Some("application/json"));
        }
    }
}

#[tokio::test]
async fn a_rate_limited_upstream_keeps_its_retry_headers() {
    let mock = MockUpstream::start().await;
    mock.reply(
        Reply::json(429, json!({"error": {"message": "Rate limit reached", "type": "requests", "param": null, "code": "rate_limit_exceeded"}}))
            .header("retry-after", "7")
            .header("retry-after-ms", "7000")
            .header("x-ratelimit-reset-requests", "7s"),
    );
    let proxy = Proxy::with_policy(&mock, &keyword_policy("message")).await;

    let got = proxy
        .post("/v1/chat/completions", &common::chat("hi"))
        .await;

    let error = got.assert_error(429, Some("rate_limit_exceeded"));
    assert_eq!(error["message"], "Rate limit reached");
    assert_eq!(got.header("x-ratelimit-reset-requests"), Some("7s"));
    assert_eq!(
        got.header("retry-after"),
        Some("7"),
        "clients back off on this"
    );
    assert_eq!(got.header("retry-after-ms"), Some("7000"));
}

#[tokio::test]
async fn an_invalid_upstream_answer_is_502() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, &keyword_policy("message")).await;
    let answers = [
        ("html", Reply::raw(200, "text/html", "<html>gateway</html>")),
        ("empty", Reply::raw(200, "application/json", "")),
        (
            "truncated",
            Reply::raw(200, "application/json", r#"{"choices": [{"mess"#),
        ),
        ("wrong shape", Reply::json(200, json!({"choices": "none"}))),
        ("array", Reply::json(200, json!([1, 2]))),
    ];
    let requests = [
        ("/v1/chat/completions", common::chat("hi")),
        ("/v1/completions", json!({"model": "m", "prompt": "hi"})),
        ("/v1/embeddings", json!({"model": "m", "input": "hi"})),
    ];
    for (kind, reply) in answers {
        mock.reply(reply);
        for (path, body) in &requests {
            if *path == "/v1/embeddings" && kind == "wrong shape" {
                continue; // not a chat shape, but valid JSON for embeddings
            }
            let got = proxy.post(path, body).await;

            let error = got.assert_error(502, Some("upstream_invalid_response"));
            assert_eq!(error["type"], "upstream_error", "{kind} on {path}");
            assert!(
                !got.text().contains("gateway"),
                "{kind} on {path}: leaks the body"
            );
        }
    }
}
