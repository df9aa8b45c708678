//! Helpers for unit tests that compile a small policy from YAML and ask
//! which rules fire on a text (used by the engine's and the policy
//! compiler's tests).

use super::{Segment, evaluate};
use crate::policy::{CompiledPolicy, Direction, Role, load_path};

/// Compiles `yaml` as a root policy file.
pub(crate) fn compile_yaml(yaml: &str) -> CompiledPolicy {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, yaml).expect("policy written");
    load_path(&path).expect("policy compiles")
}

/// The ids of the rules that fire on `text` sent by `role`, sorted, each
/// once.
pub(crate) fn rules_fired(
    policy: &CompiledPolicy,
    direction: Direction,
    role: Role,
    text: &str,
) -> Vec<String> {
    let decision = evaluate(
        policy,
        direction,
        &[Segment::new(role, "messages[0].content", text)],
    );
    let mut ids: Vec<String> = decision
        .findings
        .iter()
        .map(|f| f.rule.to_string())
        .collect();
    ids.sort();
    ids.dedup();
    ids
}
