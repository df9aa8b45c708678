//! A hook to hand freed memory back to the system after a policy compiles.
//!
//! Why: compiling the default policy peaks at a few hundred MB of
//! transient data (the compiler's intermediate automata), all freed once
//! the policy is built. The allocator returns freed pages to the system
//! lazily, on later allocator activity; an idle proxy has none, so those
//! pages stayed resident and idle RSS depended on timing (62-74 MB with
//! the session-22 policy, `docs/performance.md`). Asking the allocator to
//! collect once the policy is in place brings it to what is live (56 MB).
//! The library does not know the allocator (the binary chooses it, and the
//! library forbids `unsafe`), so the binary installs the hook.

use std::sync::OnceLock;

static AFTER_POLICY_COMPILED: OnceLock<fn()> = OnceLock::new();

/// Installs `hook`, called after each policy compile (at start and on every
/// reload); a second call is ignored.
pub fn on_policy_compiled(hook: fn()) {
    let _ = AFTER_POLICY_COMPILED.set(hook);
}

/// Runs the installed hook, if any.
pub(crate) fn policy_compiled() {
    if let Some(hook) = AFTER_POLICY_COMPILED.get() {
        hook();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static CALLS: AtomicUsize = AtomicUsize::new(0);

    fn count() {
        CALLS.fetch_add(1, Ordering::SeqCst);
    }

    #[test]
    fn the_installed_hook_runs_after_each_compile_and_a_second_is_ignored() {
        on_policy_compiled(count);
        on_policy_compiled(|| panic!("a second hook must not replace the first"));
        let before = CALLS.load(Ordering::SeqCst);
        policy_compiled();
        policy_compiled();
        assert!(CALLS.load(Ordering::SeqCst) >= before + 2);
    }
}
