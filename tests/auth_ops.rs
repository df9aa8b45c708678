//! Operating the proxy: proxy API keys (default-deny), open health and
//! metrics endpoints, request and decision counters, monitor mode, policy
//! selection per key and model, and load shedding.

mod common;

use std::time::Duration;

use common::{MockUpstream, Proxy, Reply, basic_config, chat, keyword_policy, metric_value};
use serde_json::json;
use sha2::{Digest, Sha256};

const TEAM_KEY: &str = "pk-team-a-0123456789";
const STRICT_KEY: &str = "pk-strict-9876543210";

fn sha256_hex(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// A policy that blocks `banana` (selected per key or model).
const STRICT_POLICY: &str = r#"
version: 1
name: strict
rules:
  - id: no-bananas
    keywords: [banana]
    action: block
"#;

/// Two proxy keys: `team-a` on the default policy, `strict` on the strict set.
fn auth_config(upstream_url: &str) -> String {
    format!(
        "{}policy_sets:
  strict: [strict.yaml]
auth:
  api_keys:
    - {{id: team-a, sha256: {}}}
    - {{id: strict, sha256: {}, policy: strict}}
",
        basic_config(upstream_url),
        sha256_hex(TEAM_KEY),
        sha256_hex(STRICT_KEY)
    )
}

async fn auth_proxy(mock: &MockUpstream) -> Proxy {
    Proxy::builder(&auth_config(&mock.base_url()))
        .file("policy.yaml", &keyword_policy("message"))
        .file("strict.yaml", STRICT_POLICY)
        .upstream_key("mock", "sk-upstream-only")
        .start()
        .await
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

#[tokio::test]
async fn requests_without_a_valid_proxy_key_are_401_and_never_forwarded() {
    let mock = MockUpstream::start().await;
    let proxy = auth_proxy(&mock).await;
    let wrong = bearer("pk-wrong");
    let basic = format!("Basic {TEAM_KEY}");
    let headers: [(&str, Option<&str>); 5] = [
        ("no header", None),
        ("wrong key", Some(&wrong)),
        ("wrong scheme", Some(&basic)),
        ("empty bearer", Some("Bearer ")),
        ("bare key", Some(TEAM_KEY)),
    ];
    for (name, header) in headers {
        let auth: Vec<(&str, &str)> = header.map(|h| ("authorization", h)).into_iter().collect();
        for path in ["/v1/chat/completions", "/v1/assistants"] {
            let got = proxy.post_with(path, &chat("hi"), &auth).await;

            let error = got.assert_error(401, Some("invalid_api_key"));
            assert_eq!(error["type"], "invalid_request_error", "{name} {path}");
            assert_eq!(
                got.header("www-authenticate"),
                Some("Bearer"),
                "{name} {path}"
            );
        }
        let models = proxy.get_with("/v1/models", &auth).await;
        models.assert_error(401, Some("invalid_api_key"));
    }
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn a_valid_proxy_key_is_accepted_and_replaced_by_the_upstream_key() {
    let mock = MockUpstream::start().await;
    let proxy = auth_proxy(&mock).await;

    for auth in [bearer(TEAM_KEY), format!("bearer  {TEAM_KEY} ")] {
        let got = proxy
            .post_with(
                "/v1/chat/completions",
                &chat("hi"),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(got.status, 200, "{auth:?}: {}", got.text());
    }
    let models = proxy
        .get_with("/v1/models", &[("authorization", &bearer(TEAM_KEY))])
        .await;
    assert_eq!(models.status, 200);
    let unknown = proxy
        .get_with("/v1/assistants", &[("authorization", &bearer(TEAM_KEY))])
        .await;
    unknown.assert_error(404, Some("unknown_url"));

    let seen = mock.requests();
    assert_eq!(seen.len(), 3);
    for request in seen {
        assert_eq!(
            request.header("authorization"),
            Some("Bearer sk-upstream-only"),
            "the proxy key must never reach the upstream"
        );
    }
}

#[tokio::test]
async fn health_readiness_and_metrics_need_no_key() {
    let mock = MockUpstream::start().await;
    let proxy = auth_proxy(&mock).await;

    let health = proxy.get("/healthz").await;
    let ready = proxy.get("/readyz").await;
    let metrics = proxy.get("/metrics").await;

    assert_eq!(health.status, 200);
    assert_eq!(health.json(), json!({"status": "ok"}));
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(ready.json()["policy"], "test-keywords");
    assert_eq!(ready.json()["rules"], 1);
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/openmetrics-text")),
        "{:?}",
        metrics.headers
    );
    assert!(metrics.text().contains("palisade_requests_total"));
    assert_eq!(mock.count(), 0);
}

#[tokio::test]
async fn readiness_fails_without_a_default_upstream() {
    let (a, b) = (MockUpstream::start().await, MockUpstream::start().await);
    let config = format!(
        "policies: [policy.yaml]
upstreams:
  - {{name: a, base_url: \"{}\", models: [\"gpt-*\"]}}
  - {{name: b, base_url: \"{}\", models: [\"claude-*\"]}}
",
        a.base_url(),
        b.base_url()
    );
    let proxy = Proxy::start(&config, &keyword_policy("message")).await;

    let ready = proxy.get("/readyz").await;

    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(proxy.get("/healthz").await.status, 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status_and_blocks_by_rule() {
    let mock = MockUpstream::start().await;
    let proxy = auth_proxy(&mock).await;
    let auth = bearer(TEAM_KEY);
    let key = [("authorization", auth.as_str())];

    for text in ["hello", "hi again", "say forbidden-word"] {
        proxy
            .post_with("/v1/chat/completions", &chat(text), &key)
            .await;
    }
    proxy.post("/v1/chat/completions", &chat("no key")).await;
    proxy
        .post_with(
            "/v1/embeddings",
            &json!({"model": "m", "input": "forbidden-word"}),
            &key,
        )
        .await;
    proxy.get_with("/v1/assistants", &key).await;
    let text = proxy.metrics().await;

    let requests = |route: &str, status: &str| {
        metric_value(
            &text,
            "palisade_requests_total",
            &[
                &format!("route=\"{route}\""),
                &format!("status=\"{status}\""),
            ],
        )
    };
    assert_eq!(requests("/v1/chat/completions", "200"), 3.0, "{text}");
    assert_eq!(requests("/v1/chat/completions", "401"), 1.0, "{text}");
    assert_eq!(requests("/v1/embeddings", "400"), 1.0, "{text}");
    assert_eq!(requests("other", "404"), 1.0, "{text}");
    let blocks = metric_value(
        &text,
        "palisade_decisions_total",
        &[
            "policy=\"test-keywords\"",
            "rule=\"forbidden-word\"",
            "action=\"block\"",
            "direction=\"input\"",
            "mode=\"enforce\"",
        ],
    );
    assert_eq!(blocks, 2.0, "{text}");
    assert_eq!(mock.count(), 2);
}

#[tokio::test]
async fn a_key_bound_to_a_policy_set_gets_that_policy() {
    let mock = MockUpstream::start().await;
    let proxy = auth_proxy(&mock).await;
    let body = chat("I like banana bread.");

    let strict = proxy
        .post_with(
            "/v1/chat/completions",
            &body,
            &[("authorization", &bearer(STRICT_KEY))],
        )
        .await;
    let team = proxy
        .post_with(
            "/v1/chat/completions",
            &body,
            &[("authorization", &bearer(TEAM_KEY))],
        )
        .await;

    assert_eq!(strict.header("x-palisade-decision"), Some("block"));
    assert_eq!(strict.header("x-palisade-policy"), Some("strict"));
    assert_eq!(strict.header("x-palisade-rules"), Some("no-bananas"));
    assert_eq!(team.header("x-palisade-decision"), Some("allow"));
    assert_eq!(team.header("x-palisade-policy"), Some("test-keywords"));
    assert_eq!(mock.count(), 1, "only the team key's request was forwarded");
}

#[tokio::test]
async fn policy_routes_pick_a_policy_by_model_and_route() {
    let mock = MockUpstream::start().await;
    let config = format!(
        "{}policy_sets:
  strict: [strict.yaml]
policy_routes:
  - {{model: \"fruit-*\", policy: strict}}
  - {{route: /v1/embeddings, policy: strict}}
",
        basic_config(&mock.base_url())
    );
    let proxy = Proxy::builder(&config)
        .file("policy.yaml", &keyword_policy("message"))
        .file("strict.yaml", STRICT_POLICY)
        .start()
        .await;
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "fruit-1", "messages": [{"role": "user", "content": "banana"}]}),
            "strict",
            "block",
        ),
        (
            "/v1/chat/completions",
            json!({"model": "veg-1", "messages": [{"role": "user", "content": "banana"}]}),
            "test-keywords",
            "allow",
        ),
        (
            "/v1/embeddings",
            json!({"model": "veg-1", "input": "banana"}),
            "strict",
            "block",
        ),
        (
            "/v1/completions",
            json!({"model": "veg-1", "prompt": "banana"}),
            "test-keywords",
            "allow",
        ),
    ];
    for (path, body, policy, decision) in cases {
        let got = proxy.post(path, &body).await;

        assert_eq!(
            got.header("x-palisade-policy"),
            Some(policy),
            "{path} {body}"
        );
        assert_eq!(
            got.header("x-palisade-decision"),
            Some(decision),
            "{path} {body}"
        );
    }
}

#[tokio::test]
async fn monitor_mode_forwards_unchanged_and_says_what_it_would_have_done() {
    let mock = MockUpstream::start().await;
    let config = format!("{}monitor: true\n", basic_config(&mock.base_url()));
    let proxy = Proxy::start(&config, &keyword_policy("message")).await;
    mock.reply(Reply::chat("the answer has forbidden-word in it"));
    let body = chat("please say forbidden-word");

    let got = proxy.post("/v1/chat/completions", &body).await;

    assert_eq!(got.status, 200, "{}", got.text());
    assert_eq!(mock.single().json(), body, "forwarded unchanged");
    assert_eq!(got.chat_content(), "the answer has forbidden-word in it");
    assert_eq!(got.header("x-palisade-monitor"), Some("block"));
    assert_eq!(got.header("x-palisade-decision"), Some("allow"));
    let text = proxy.metrics().await;
    for direction in ["input", "output"] {
        let shadowed = metric_value(
            &text,
            "palisade_decisions_total",
            &[
                "rule=\"forbidden-word\"",
                &format!("direction=\"{direction}\""),
                "mode=\"monitor\"",
            ],
        );
        assert_eq!(shadowed, 1.0, "{direction}: {text}");
    }
}

#[tokio::test]
async fn monitor_mode_does_not_redact_either() {
    let mock = MockUpstream::start().await;
    let default = common::default_policy_path();
    let config = basic_config(&mock.base_url()).replace(
        "policies: [policy.yaml]",
        &format!("policies: [{}]\nmonitor: true", default.display()),
    );
    let proxy = Proxy::builder(&config).start().await;
    let body = chat("my key is sk-proj-abcdefghijklmnopqrstuvwx123456");

    let got = proxy.post("/v1/chat/completions", &body).await;

    assert_eq!(got.status, 200);
    assert_eq!(mock.single().json(), body);
    assert_eq!(got.header("x-palisade-monitor"), Some("redact"));
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_are_shed_with_503() {
    let mock = MockUpstream::start().await;
    mock.reply(Reply::chat("slow").delay(Duration::from_millis(400)));
    let config = format!(
        "{}max_concurrent_requests: 1\n",
        basic_config(&mock.base_url())
    );
    let proxy = std::sync::Arc::new(Proxy::start(&config, &keyword_policy("message")).await);

    let first = {
        let proxy = proxy.clone();
        tokio::spawn(async move { proxy.post("/v1/chat/completions", &chat("first")).await })
    };
    mock.wait_for(1).await;
    let second = proxy.post("/v1/chat/completions", &chat("second")).await;
    let health = proxy.get("/healthz").await;
    let first = first.await.unwrap();

    let error = second.assert_error(503, Some("overloaded"));
    assert_eq!(error["type"], "server_error");
    assert_eq!(second.header("retry-after"), Some("1"));
    assert_eq!(health.status, 200, "health is never shed");
    assert_eq!(first.status, 200);
    assert_eq!(mock.count(), 1);
}

/// A chat client sends the whole conversation on every call: the texts
/// already checked come from the detection cache (counted in /metrics), and
/// the verdicts are those of a scan; with the cache off nothing is cached.
#[tokio::test]
async fn repeated_conversation_texts_come_from_the_detection_cache() {
    let mock = MockUpstream::start().await;
    mock.reply(Reply::chat("fine"));
    let conversation = |last: &str| {
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "You are a helpful travel assistant."},
            {"role": "user", "content": "Plan a day in Lisbon."},
            {"role": "assistant", "content": "Start at the castle, then walk down to Alfama."},
            {"role": "user", "content": last},
        ]})
    };
    let cached = |text: &str, result: &str| {
        metric_value(
            text,
            "palisade_detection_cache_texts",
            &[&format!("result=\"{result}\"")],
        )
    };

    let proxy = Proxy::start(&basic_config(&mock.base_url()), &keyword_policy("error")).await;
    assert_eq!(
        proxy
            .post("/v1/chat/completions", &conversation("And dinner?"))
            .await
            .status,
        200
    );
    let blocked = proxy
        .post("/v1/chat/completions", &conversation("say forbidden-word"))
        .await;
    assert_eq!(blocked.status, 400, "{}", blocked.text());
    let again = proxy
        .post("/v1/chat/completions", &conversation("say forbidden-word"))
        .await;
    assert_eq!(again.status, 400, "a cached block is still a block");
    let metrics = proxy.get("/metrics").await.text();
    assert_eq!(cached(&metrics, "miss"), 5.0, "{metrics}");
    assert_eq!(cached(&metrics, "hit"), 7.0, "{metrics}");

    let off = format!("{}detection_cache_mb: 0\n", basic_config(&mock.base_url()));
    let proxy = Proxy::start(&off, &keyword_policy("error")).await;
    for _ in 0..2 {
        proxy
            .post("/v1/chat/completions", &conversation("And dinner?"))
            .await;
    }
    let metrics = proxy.get("/metrics").await.text();
    assert_eq!(
        cached(&metrics, "hit") + cached(&metrics, "miss"),
        0.0,
        "{metrics}"
    );
}
