//! A real client: the official OpenAI Python SDK (tests/sdk/test_openai_sdk.py)
//! talks to two proxies in front of the built-in demo model, one refusing
//! with messages and one with errors.
//!
//! Needs `PALISADE_PYTHON` pointing at a Python with `openai` installed (CI
//! sets it up in `.ci/run`); without it the test says so and passes.

mod common;

use std::path::Path;

use common::Proxy;

/// The shipped default policy, but refusing with HTTP 400 errors (the first
/// policy file's settings win; the second brings the rules).
const ERROR_MODE_ROOT: &str = r#"
version: 1
name: default-error-mode
refusal:
  mode: error
  message: "I can't help with that request."
"#;

fn config(upstream: &str, policies: &str) -> String {
    format!(
        "policies: {policies}
upstreams:
  - name: demo
    base_url: {upstream}
    read_timeout_secs: 10
    default: true
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_openai_python_sdk_works_through_the_proxy() {
    let Some(python) = std::env::var_os("PALISADE_PYTHON").filter(|p| !p.is_empty()) else {
        eprintln!(
            "SKIPPED the_official_openai_python_sdk_works_through_the_proxy: set PALISADE_PYTHON \
             to a Python with the `openai` package (python3 -m venv .venv && .venv/bin/pip install openai)"
        );
        return;
    };
    let demo = palisade::server::demo::spawn().await.unwrap();
    let default = common::default_policy_path();
    let message_mode = Proxy::builder(&config(&demo, &format!("[{}]", default.display())))
        .start()
        .await;
    let error_mode = Proxy::builder(&config(
        &demo,
        &format!("[root.yaml, {}]", default.display()),
    ))
    .file("root.yaml", ERROR_MODE_ROOT)
    .start()
    .await;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/test_openai_sdk.py");
    let args = [
        script.into_os_string(),
        format!("{}/v1", message_mode.url).into(),
        format!("{}/v1", error_mode.url).into(),
    ];

    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(&python)
            .args(&args)
            .env("OPENAI_LOG", "warn")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {python:?}: {e}"))
    })
    .await
    .unwrap();

    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK script failed ({})\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    eprintln!("{stdout}");
}
