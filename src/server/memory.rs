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
