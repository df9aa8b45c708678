//! Proxy overhead, measured side by side in one run: the same requests sent
//! straight to a mock upstream, through Palisade with an empty policy, and
//! through Palisade with the default policy. Non-streamed and streamed
//! (16 chunks) answers, 1 and 32 connections, 1 KB and 16 KB prompts. One
//! table: requests/s, p50, p99, errors, and each row's ratio to direct.
//!
//! Run: `cargo run --release --example load -- [requests-per-row]`
//! (or `scripts/load.sh --in-process`). The mock, both proxies and the load
//! generator share this process and its runtime. `scripts/load.sh` without
//! `--in-process` measures with wrk against `palisade serve` and
//! `examples/mock_upstream.rs`, each in its own process: prefer that.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::path::Path;
use std::time::{Duration, Instant};

mod common;

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use common::{ANSWER, STREAM_END, chat_answer, chunk_event, serve, sse_response};
use futures_util::StreamExt;
use palisade::config::Config;
use palisade::policy;
use palisade::proxy::state::ProxyState;
use serde_json::{Value, json};

async fn mock_chat(axum::Json(body): axum::Json<Value>) -> Response {
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let words: Vec<&str> = ANSWER.split_inclusive(' ').collect();
        let mut out: String = (0..16)
            .map(|i| chunk_event(words[i % words.len()]))
            .collect();
        out.push_str(STREAM_END);
        return sse_response(Body::from(out));
    }
    chat_answer(ANSWER)
}

/// The proxy as `palisade serve` runs it.
async fn serve_proxy(state: ProxyState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(palisade::server::serve(
        listener,
        state,
        std::future::pending(),
    ));
    format!("http://{addr}/v1")
}

struct Sample {
    ok: bool,
    total: Duration,
}

async fn one(client: &reqwest::Client, url: &str, stream: bool, prompt: &str) -> Sample {
    let body = json!({"model": "m", "stream": stream, "messages": [
        {"role": "system", "content": "You are a concise travel assistant."},
        {"role": "user", "content": prompt}]});
    let start = Instant::now();
    let Ok(response) = client
        .post(format!("{url}/chat/completions"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
    else {
        return Sample {
            ok: false,
            total: start.elapsed(),
        };
    };
    let ok = response.status().is_success();
    let ok = ok && response.bytes().await.is_ok();
    Sample {
        ok,
        total: start.elapsed(),
    }
}

struct Row {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

async fn run(url: &str, requests: usize, concurrency: usize, stream: bool, prompt: &str) -> Row {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap();
    let start = Instant::now();
    let samples = futures_util::stream::iter(0..requests)
        .map(|_| one(&client, url, stream, prompt))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let wall = start.elapsed();
    let mut times: Vec<Duration> = samples.iter().map(|s| s.total).collect();
    times.sort();
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    Row {
        rps: requests as f64 / wall.as_secs_f64(),
        p50: at(0.5),
        p99: at(0.99),
        errors: samples.iter().filter(|s| !s.ok).count(),
    }
}

fn prompt_of(bytes: usize) -> String {
    let sentence = "Plan a three-day trip to Lisbon in spring with museums, long walks, seafood and a budget in euros. ";
    sentence.repeat(bytes / sentence.len() + 1)[..bytes].to_string()
}

#[tokio::main]
async fn main() {
    let requests: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);

    let upstream = serve(Router::new().route("/v1/chat/completions", post(mock_chat))).await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let proxy_with = |policy: policy::CompiledPolicy| {
        let mut config = Config::builtin_default();
        config.upstreams[0].base_url = upstream.clone();
        config.upstreams[0].api_key_env = None;
        ProxyState::new(config, policy).expect("proxy state")
    };
    let default_policy =
        policy::load_path(&root.join("policies/default.yaml")).expect("default policy");
    let empty_file =
        std::env::temp_dir().join(format!("palisade-empty-{}.yaml", std::process::id()));
    std::fs::write(&empty_file, "version: 1\nname: empty\nrules: []\n").unwrap();
    let empty_policy = policy::load_path(&empty_file).expect("empty policy");
    let _ = std::fs::remove_file(&empty_file);
    let targets = [
        ("direct", upstream.clone()),
        (
            "palisade, empty policy",
            serve_proxy(proxy_with(empty_policy)).await,
        ),
        (
            "palisade, default policy",
            serve_proxy(proxy_with(default_policy)).await,
        ),
    ];

    println!("{requests} requests per row; mock, proxies and load generator share this process");
    println!(
        "{:<34} {:<26} {:>9} {:>10} {:>10} {:>6} {:>9}",
        "scenario", "target", "req/s", "p50 ms", "p99 ms", "errors", "vs direct"
    );
    for stream in [false, true] {
        for concurrency in [1usize, 32] {
            for prompt_bytes in [1024usize, 16 * 1024] {
                let prompt = prompt_of(prompt_bytes);
                let scenario = format!(
                    "{} c={concurrency} prompt={}KB",
                    if stream { "stream(16)" } else { "non-stream" },
                    prompt_bytes / 1024
                );
                let mut direct_rps = 0.0;
                for (name, url) in &targets {
                    run(url, 20, concurrency, stream, &prompt).await; // warm-up
                    let row = run(url, requests, concurrency, stream, &prompt).await;
                    if *name == "direct" {
                        direct_rps = row.rps;
                    }
                    println!(
                        "{scenario:<34} {name:<26} {:>9.0} {:>10.3} {:>10.3} {:>6} {:>8.1}%",
                        row.rps,
                        row.p50.as_secs_f64() * 1e3,
                        row.p99.as_secs_f64() * 1e3,
                        row.errors,
                        100.0 * row.rps / direct_rps
                    );
                }
            }
        }
    }
}
