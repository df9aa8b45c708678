//! Hot reload of policies: on SIGHUP, and when the policy files change
//! (polled, which also sees Kubernetes ConfigMap updates that swap a
//! symlink). Compilation runs off the request path; the new set replaces
//! the old atomically, and an invalid new policy is logged and counted
//! while the old one keeps serving. Requests in flight keep the policy
//! they started with (they hold its `Arc`).

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::proxy::ProxyState;
use crate::proxy::policies::Policies;

/// A digest of the policy files' contents and of the folders they sit in
/// (so a file added to an included folder is noticed).
pub fn fingerprint(files: &[PathBuf]) -> u64 {
    let mut hasher = DefaultHasher::new();
    let mut folders: Vec<&Path> = Vec::new();
    for file in files {
        file.hash(&mut hasher);
        std::fs::read(file).unwrap_or_default().hash(&mut hasher);
        if let Some(parent) = file.parent()
            && !folders.contains(&parent)
        {
            folders.push(parent);
        }
    }
    for folder in folders {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.hash(&mut hasher);
    }
    hasher.finish()
}

/// Recompiles every policy and swaps them in if they compile.
///
/// Before the swap, still on the blocking thread, each new policy compiles
/// the position regexes its predecessor had compiled (the patterns that
/// matched traffic), so requests right after a reload do not compile them.
pub async fn reload_now(state: &ProxyState) -> bool {
    let config = state.config.clone();
    let current = state.policies();
    let result = tokio::task::spawn_blocking(move || {
        Policies::load(&config).map(|policies| {
            let warmed = warm(&policies, &current);
            (policies, warmed)
        })
    })
    .await;
    match result {
        Ok(Ok((policies, warmed))) => {
            let rules = policies.default.rules.len();
            state.swap_policies(policies);
            super::memory::policy_compiled();
            state.metrics.reload(true);
            tracing::info!(rules, warmed_regexes = warmed, "policies reloaded");
            true
        }
        Ok(Err(e)) => {
            state.metrics.reload(false);
            tracing::error!(error = %e, "policy reload rejected; the previous policy keeps serving");
            false
        }
        Err(e) => {
            state.metrics.reload(false);
            tracing::error!(error = %e, "policy reload task failed; the previous policy keeps serving");
            false
        }
    }
}

/// Warms each new policy from the policy of the same name it replaces.
fn warm(new: &Policies, old: &Policies) -> usize {
    let mut n = crate::policy::warm_from(&new.default, &old.default);
    for (name, policy) in &new.named {
        if let Some(previous) = old.named.get(name) {
            n += crate::policy::warm_from(policy, previous);
        }
    }
    n
}

/// Starts the SIGHUP listener and the file poller (when `reload_poll_secs > 0`).
pub fn spawn_watchers(state: ProxyState) {
    #[cfg(unix)]
    {
        let state = state.clone();
        tokio::spawn(async move {
            let Ok(mut hup) =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            else {
                tracing::warn!("cannot listen for SIGHUP; reload on signal is off");
                return;
            };
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading policies");
                reload_now(&state).await;
            }
        });
    }
    let interval = state.config.reload_poll_secs;
    if interval == 0 {
        return;
    }
    tokio::spawn(async move {
        let mut last = fingerprint(&state.policies().files());
        let mut ticker = tokio::time::interval(Duration::from_secs(interval));
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let files = state.policies().files();
            let now = tokio::task::spawn_blocking(move || fingerprint(&files))
                .await
                .unwrap_or(last);
            if now != last {
                tracing::info!("policy files changed: reloading");
                reload_now(&state).await;
                // Remember the new contents even when invalid, so a broken
                // file is reported once, not every poll.
                last = now;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_changes_with_content_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.yaml");
        std::fs::write(&a, "rules: []\n").unwrap();
        let f1 = fingerprint(std::slice::from_ref(&a));
        assert_eq!(f1, fingerprint(std::slice::from_ref(&a)));
        std::fs::write(&a, "rules: [] # changed\n").unwrap();
        let f2 = fingerprint(std::slice::from_ref(&a));
        assert_ne!(f1, f2);
        std::fs::write(dir.path().join("b.yaml"), "rules: []\n").unwrap();
        assert_ne!(f2, fingerprint(std::slice::from_ref(&a)));
    }
}
