use super::*;
use crate::engine::{Segment, evaluate};

/// Compiles `yaml` as a root policy file.
fn policy(yaml: &str) -> CompiledPolicy {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("policy.yaml");
    std::fs::write(&path, yaml).expect("policy written");
    load_path(&path).expect("policy compiles")
}

fn fired(policy: &CompiledPolicy, direction: Direction, text: &str) -> Vec<String> {
    let decision = evaluate(
        policy,
        direction,
        &[Segment::new(Role::User, "messages[0].content", text)],
    );
    let mut ids: Vec<String> = decision
        .findings
        .iter()
        .map(|f| f.rule.to_string())
        .collect();
    ids.sort();
    ids
}

fn patterns_of(policy: &CompiledPolicy, direction: Direction) -> Vec<String> {
    policy
        .matchers
        .get(direction)
        .values()
        .flat_map(|m| m.patterns.patterns())
        .map(str::to_string)
        .collect()
}

const BY_DIRECTION: &str = r#"
version: 1
name: by-direction
rules:
  - id: asks-zebra
    applies_to: input
    regex: ['\bzebras?\b']
    action: block
  - id: says-giraffe
    applies_to: output
    regex: ['\bgiraffes?\b']
    action: block
  - id: either-okapi
    applies_to: both
    regex: ['\bokapis?\b']
    action: block
"#;

#[test]
fn each_direction_searches_only_the_patterns_of_its_rules() {
    let p = policy(BY_DIRECTION);
    let input = patterns_of(&p, Direction::Input);
    let output = patterns_of(&p, Direction::Output);
    assert!(input.iter().any(|r| r.contains("zebra")));
    assert!(!input.iter().any(|r| r.contains("giraffe")));
    assert!(output.iter().any(|r| r.contains("giraffe")));
    assert!(!output.iter().any(|r| r.contains("zebra")));
    assert!(input.iter().any(|r| r.contains("okapi")));
    assert!(output.iter().any(|r| r.contains("okapi")));
}

#[test]
fn rules_fire_in_their_own_direction_only() {
    let p = policy(BY_DIRECTION);
    let text = "a zebra, a giraffe and an okapi";
    assert_eq!(
        fired(&p, Direction::Input, text),
        ["asks-zebra", "either-okapi"]
    );
    assert_eq!(
        fired(&p, Direction::Output, text),
        ["either-okapi", "says-giraffe"]
    );
}

#[test]
fn patterns_shared_with_a_rule_of_the_other_direction_are_searched_for_it() {
    // The second rule's signal has the same patterns as the first's, so it
    // reads the first one's hits (`hits_from`); those patterns must still
    // be searched in answers, where only the second rule looks.
    let p = policy(
        r#"
version: 1
name: shared
rules:
  - id: asks-lemur
    applies_to: input
    keywords: [lemur]
    action: block
  - id: says-lemur
    applies_to: output
    keywords: [lemur]
    action: block
"#,
    );
    assert_eq!(fired(&p, Direction::Input, "one lemur"), ["asks-lemur"]);
    assert_eq!(fired(&p, Direction::Output, "one lemur"), ["says-lemur"]);
    assert!(fired(&p, Direction::Output, "one lemming").is_empty());
}
