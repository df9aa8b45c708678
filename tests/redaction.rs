//! Secrets and personal data in a request are redacted before the upstream
//! sees them, wherever they are, and nothing else in the request changes.

mod common;

use common::{MockUpstream, Proxy, chat};
use serde_json::{Value, json};

const KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwx123456";
const KEY_MARK: &str = "[REDACTED:secret-openai-key]";
const EMAIL: &str = "jane.doe@example.com";
const EMAIL_MARK: &str = "[REDACTED:email]";

/// Redacts e-mail addresses (and, by including nothing else, only them).
const EMAIL_POLICY: &str = r#"
version: 1
name: pii
rules:
  - id: email
    category: pii
    applies_to: both
    forms: [raw]
    regex: ['[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}']
    action: redact
  - id: forbidden-word
    keywords: [forbidden-word]
    action: block
"#;

/// Requests carrying `secret` in every place a model reads text, plus
/// fields Palisade does not model that must survive the rewrite.
fn requests_with(secret: &str) -> Vec<(&'static str, &'static str, Value)> {
    let arguments = json!({"api_key": secret, "retries": 2}).to_string();
    vec![
        (
            "user string",
            "/v1/chat/completions",
            json!({"model": "m", "temperature": 0.1, "x_extra": {"keep": [1, 2]},
                   "messages": [{"role": "user", "name": "bob", "content": format!("my key is {secret}, store it")}]}),
        ),
        (
            "system message",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [
                {"role": "system", "content": format!("Contact {secret} for help.")},
                {"role": "user", "content": "hello"}]}),
        ),
        (
            "content part",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
                {"type": "text", "text": format!("see {secret}"), "x_part": 1}]}]}),
        ),
        (
            "tool result",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [
                {"role": "user", "content": "read the file"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": format!("config: {secret}")}]}),
        ),
        (
            "assistant tool_calls arguments",
            "/v1/chat/completions",
            json!({"model": "m", "parallel_tool_calls": false, "messages": [
                {"role": "user", "content": "deploy"},
                {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "deploy", "arguments": arguments}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "done"}]}),
        ),
        (
            "tool definition",
            "/v1/chat/completions",
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto",
                   "tools": [{"type": "function", "function": {"name": "mail", "description": format!("Sends mail as {secret}."),
                              "parameters": {"type": "object", "properties": {"to": {"type": "string"}}, "required": ["to"]}}}]}),
        ),
        (
            "legacy prompt",
            "/v1/completions",
            json!({"model": "m", "prompt": format!("Key: {secret}"), "max_tokens": 3}),
        ),
        (
            "legacy prompt array",
            "/v1/completions",
            json!({"model": "m", "prompt": ["clean", format!("Key: {secret}"), "clean too"], "n": 2}),
        ),
        (
            "embeddings input",
            "/v1/embeddings",
            json!({"model": "m", "input": format!("{secret} is mine"), "dimensions": 8}),
        ),
        (
            "embeddings input array",
            "/v1/embeddings",
            json!({"model": "m", "input": ["clean", format!("{secret} is mine")], "encoding_format": "float"}),
        ),
    ]
}

/// The request the upstream must receive: the same JSON with every
/// occurrence of `secret` replaced by `mark`.
#[expect(clippy::unwrap_used, reason = "test helper")]
fn expected_after_redaction(request: &Value, secret: &str, mark: &str) -> Value {
    serde_json::from_str(&request.to_string().replace(secret, mark)).unwrap()
}

#[expect(clippy::unwrap_used, reason = "test helper")]
async fn assert_redacted_everywhere(proxy: &Proxy, mock: &MockUpstream, secret: &str, mark: &str) {
    for (place, path, request) in requests_with(secret) {
        let before = mock.count();

        let got = proxy.post(path, &request).await;

        assert_eq!(got.status, 200, "{place}: {}", got.text());
        assert_eq!(got.header("x-palisade-decision"), Some("redact"), "{place}");
        assert_eq!(mock.count(), before + 1, "{place}: forwarded once");
        let seen = mock.requests().pop().unwrap();
        let mut seen_json = seen.json();
        common::strip_canary(&mut seen_json);
        assert!(
            !String::from_utf8_lossy(&seen.body).contains(secret),
            "{place}: the upstream saw the secret: {}",
            String::from_utf8_lossy(&seen.body)
        );
        assert_eq!(
            seen_json,
            expected_after_redaction(&request, secret, mark),
            "{place}: upstream body"
        );
    }
}

#[tokio::test]
async fn api_keys_are_redacted_before_the_upstream_sees_them() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::default_policy(&mock).await;

    assert_redacted_everywhere(&proxy, &mock, KEY, KEY_MARK).await;
}

#[tokio::test]
async fn email_addresses_are_redacted_before_the_upstream_sees_them() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;

    assert_redacted_everywhere(&proxy, &mock, EMAIL, EMAIL_MARK).await;
}

#[tokio::test]
async fn a_redacted_system_prompt_keeps_its_leak_canary() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::default_policy(&mock).await;
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": format!("Deploy with {KEY}. Never reveal it.")},
        {"role": "user", "content": "hello"}]});

    let got = proxy.post("/v1/chat/completions", &body).await;

    assert_eq!(got.status, 200, "{}", got.text());
    let mut seen = mock.single().json();
    let canary = common::strip_canary(&mut seen);
    assert!(canary.is_some(), "canary dropped by the redaction: {seen}");
    assert_eq!(seen, expected_after_redaction(&body, KEY, KEY_MARK));
}

#[tokio::test]
async fn every_occurrence_in_a_text_is_redacted_and_the_rest_kept() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;
    let text =
        "Write to a@example.org or b.c+tag@mail.example.co.uk, not to me at example dot com.";

    let got = proxy.post("/v1/chat/completions", &chat(text)).await;

    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("x-palisade-rules"), Some("email"));
    assert_eq!(
        mock.single().json()["messages"][0]["content"],
        "Write to [REDACTED:email] or [REDACTED:email], not to me at example dot com."
    );
}

#[tokio::test]
async fn a_request_without_secrets_is_forwarded_byte_for_byte() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;
    // Formatting a rewrite would change: spacing, key order, escapes.
    let raw = "{ \"messages\" : [ {\"content\":\"caf\\u00e9 at example dot com\", \"role\":\"user\"} ],\n  \"model\":\"m\" }";

    let got = proxy
        .post_raw(
            "/v1/chat/completions",
            Some("application/json"),
            raw.as_bytes().to_vec(),
        )
        .await;

    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(got.header("x-palisade-decision"), Some("allow"));
    assert_eq!(mock.single().body, raw.as_bytes());
}

#[tokio::test]
async fn a_block_in_the_same_request_wins_over_redaction() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": format!("I am {EMAIL}")},
        {"role": "user", "content": "now say forbidden-word"}]});

    let got = proxy.post("/v1/chat/completions", &body).await;

    assert_eq!(got.status, 200);
    assert_eq!(got.header("x-palisade-decision"), Some("block"));
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn an_email_in_an_answer_is_redacted_too() {
    let mock = MockUpstream::start().await;
    mock.reply(common::Reply::chat(&format!(
        "You can reach her at {EMAIL}."
    )));
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;

    let got = proxy
        .post("/v1/chat/completions", &chat("Who is Jane?"))
        .await;

    assert_eq!(got.chat_content(), "You can reach her at [REDACTED:email].");
    assert_eq!(got.json()["usage"]["total_tokens"], 7);
}

/// An answer's `content` may be an array of parts; clients render its text
/// just like a string, so it is redacted the same way.
#[tokio::test]
async fn an_email_in_an_answer_made_of_parts_is_redacted_too() {
    let mock = MockUpstream::start().await;
    let mut answer = common::chat_completion("m", "x");
    answer["choices"][0]["message"]["content"] = json!([
        {"type": "text", "text": "Her address:"},
        {"type": "text", "text": format!("write to {EMAIL} today")}]);
    mock.reply(common::Reply::json(200, answer));
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;

    let got = proxy
        .post("/v1/chat/completions", &chat("Who is Jane?"))
        .await;

    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        got.json()["choices"][0]["message"]["content"],
        json!([
            {"type": "text", "text": "Her address:"},
            {"type": "text", "text": "write to [REDACTED:email] today"}])
    );
}

#[tokio::test]
async fn explicit_null_content_survives_a_rewrite_both_ways() {
    let mock = MockUpstream::start().await;
    let proxy = Proxy::with_policy(&mock, EMAIL_POLICY).await;
    let body = json!({"model": "m", "user": null, "messages": [
        {"role": "user", "content": "find Jane"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "find", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": format!("Jane: {EMAIL}")}]});

    let got = proxy.post("/v1/chat/completions", &body).await;

    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(
        mock.single().json(),
        expected_after_redaction(&body, EMAIL, EMAIL_MARK)
    );
    // Tool-call answers carry `"content": null`; an output rewrite keeps it.
    let mut answer = common::chat_completion("m", "x");
    answer["choices"][0]["message"] = json!({"role": "assistant", "content": null, "tool_calls": [
        {"id": "c2", "type": "function", "function": {"name": "mail", "arguments": format!("{{\"to\": \"{EMAIL}\"}}")}}]});
    mock.reply(common::Reply::json(200, answer.clone()));

    let got = proxy.post("/v1/chat/completions", &chat("mail Jane")).await;

    assert_eq!(
        got.json(),
        expected_after_redaction(&answer, EMAIL, EMAIL_MARK)
    );
}
