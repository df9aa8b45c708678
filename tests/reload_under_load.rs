//! Hot reload while requests are flowing: 20 reloads (and a rejected
//! invalid policy) under continuous traffic, with no failed request, and
//! each reload's policy in force right after it.

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup step should fail the test loudly"
)]

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use palisade::config::{self, EnvOverrides};
use palisade::proxy::ProxyState;
use palisade::proxy::policies::Policies;
use palisade::server;

fn policy_blocking(phrase: &str) -> String {
    format!(
        "version: 1\nname: reload-test\nrules:\n  - id: blocked-phrase\n    keywords: [\"{phrase}\"]\n    action: block\n"
    )
}

async fn start(dir: &Path) -> (ProxyState, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(upstream, server::demo::router()).await });
    std::fs::write(
        dir.join("palisade.yaml"),
        format!(
            "policies: [policy.yaml]\nreload_poll_secs: 1\nupstreams:\n  - name: mock\n    base_url: http://{upstream_addr}/v1\n    default: true\n"
        ),
    )
    .unwrap();
    let config = config::load(Some(&dir.join("palisade.yaml")), &EnvOverrides::default()).unwrap();
    let policies = Policies::load(&config).unwrap();
    let state = ProxyState::with_policies(config, policies).unwrap();
    let addr = listener.local_addr().unwrap();
    let app_state = state.clone();
    tokio::spawn(async move { axum::serve(listener, server::app(app_state)).await });
    (state, format!("http://{addr}/v1/chat/completions"))
}

async fn decision(client: &reqwest::Client, url: &str, text: &str) -> Result<String, String> {
    let body =
        serde_json::json!({"model": "demo", "messages": [{"role": "user", "content": text}]});
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if response.status() != 200 {
        return Err(format!("status {}", response.status()));
    }
    Ok(response
        .headers()
        .get("x-palisade-decision")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        policy_blocking("phrase zero"),
    )
    .unwrap();
    let (state, url) = start(dir.path()).await;

    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicUsize::new(0));
    let served = Arc::new(AtomicUsize::new(0));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (stop, failures, served, url) =
            (stop.clone(), failures.clone(), served.clone(), url.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let text = format!("worker {worker} request {i}: say hello");
                match decision(&client, &url, &text).await {
                    Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("failed: {e}");
                        failures.fetch_add(1, Ordering::Relaxed)
                    }
                };
                i += 1;
            }
        }));
    }

    let client = reqwest::Client::new();
    for round in 1..=20 {
        let phrase = format!("phrase number {round}");
        std::fs::write(dir.path().join("policy.yaml"), policy_blocking(&phrase)).unwrap();
        assert!(server::reload::reload_now(&state).await, "reload {round}");
        assert_eq!(decision(&client, &url, &phrase).await.unwrap(), "block");
        let previous = format!("phrase number {}", round - 1);
        assert_eq!(decision(&client, &url, &previous).await.unwrap(), "allow");
        if round == 10 {
            // An invalid policy is rejected; the current one keeps serving.
            std::fs::write(
                dir.path().join("policy.yaml"),
                "version: 1\nrules: [{id: x, regex: ['(']}]\n",
            )
            .unwrap();
            assert!(!server::reload::reload_now(&state).await);
            assert_eq!(decision(&client, &url, &phrase).await.unwrap(), "block");
        }
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert_eq!(failures.load(Ordering::Relaxed), 0);
    assert!(
        served.load(Ordering::Relaxed) >= 20,
        "the load ran alongside"
    );
    let metrics = state.metrics.encode();
    assert!(
        metrics.contains("palisade_policy_reloads_total{result=\"ok\"} 20"),
        "{metrics}"
    );
    assert!(
        metrics.contains("palisade_policy_reloads_total{result=\"failed\"} 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_changes_are_picked_up_by_the_poller() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.yaml"),
        policy_blocking("old phrase"),
    )
    .unwrap();
    let (state, url) = start(dir.path()).await;
    server::reload::spawn_watchers(state.clone());
    let client = reqwest::Client::new();
    assert_eq!(
        decision(&client, &url, "new phrase").await.unwrap(),
        "allow"
    );
    std::fs::write(
        dir.path().join("policy.yaml"),
        policy_blocking("new phrase"),
    )
    .unwrap();
    // The poller checks every second; give it generously long on a busy machine.
    let mut seen = String::new();
    for _ in 0..100 {
        seen = decision(&client, &url, "new phrase").await.unwrap();
        if seen == "block" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, "block");
}
