//! `palisade serve`: load configuration and policy, start the proxy, stop
//! gracefully on Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::{self, EnvOverrides, Upstream};
use crate::proxy::ProxyState;
use crate::proxy::policies::Policies;
use crate::server::{self, demo};

/// Runs the server; returns when it has shut down.
pub fn run(config_path: Option<PathBuf>, demo_mode: bool) -> ExitCode {
    crate::telemetry::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(serve(config_path, demo_mode)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

async fn serve(config_path: Option<PathBuf>, demo_mode: bool) -> Result<(), String> {
    let mut config = config::load(config_path.as_deref(), &EnvOverrides::from_env())
        .map_err(|e| e.to_string())?;
    if demo_mode {
        let url = demo::spawn()
            .await
            .map_err(|e| format!("cannot start the demo model: {e}"))?;
        config.upstreams = vec![Upstream {
            name: "demo".into(),
            base_url: url,
            api_key_env: None,
            api_key: None,
            connect_timeout_secs: 2,
            read_timeout_secs: 30,
            models: Vec::new(),
            default: true,
        }];
    }
    // Compiled on a thread of its own: the compiler's transient allocations
    // (several times the compiled policy) live in that thread's heap, which
    // the allocator gives back to the system when the thread ends, instead
    // of keeping it resident in a worker's heap (`docs/performance.md`,
    // "Memory").
    let policies = std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("policy-compile".into())
            .spawn_scoped(scope, || Policies::load(&config))
            .map_err(|e| format!("cannot start the policy compiler thread: {e}"))?
            .join()
            .map_err(|_| "the policy compiler panicked".to_string())?
            .map_err(|e| e.to_string())
    })?;
    server::memory::policy_compiled();
    tracing::info!(policy = %policies.default.name, rules = policies.default.rules.len(), sets = policies.named.len(), "policies loaded");
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    for upstream in &config.upstreams {
        tracing::info!(name = %upstream.name, base_url = %upstream.base_url, "upstream");
    }
    tracing::info!(%addr, demo = demo_mode, "palisade listening; point your OpenAI client at http://{addr}/v1");
    let state = ProxyState::with_policies(config, policies).map_err(|e| e.to_string())?;
    if !state.keys.enabled() {
        tracing::warn!(
            "no proxy API keys configured: every client can use this proxy (set auth.api_keys to require keys)"
        );
    }
    server::reload::spawn_watchers(state.clone());
    server::serve(listener, state, shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("palisade stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}
