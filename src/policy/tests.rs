use super::*;
use crate::engine::testing::{compile_yaml, rules_fired};

fn policy(yaml: &str) -> CompiledPolicy {
    compile_yaml(yaml)
}

fn fired(policy: &CompiledPolicy, direction: Direction, text: &str) -> Vec<String> {
    rules_fired(policy, direction, Role::User, text)
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

/// Rules that fire on input texts of `role`.
fn fired_as(policy: &CompiledPolicy, role: Role, text: &str) -> Vec<String> {
    rules_fired(policy, Direction::Input, role, text)
}

const TRUSTED: &str = r#"
version: 1
name: trusted
trusted_roles: [system, developer]
rules:
  - id: blocks-zebra
    keywords: [zebra]
    action: block
  - id: steers-zebra
    keywords: [zebra]
    action: steer
  - id: monitors-zebra
    keywords: [zebra]
    action: block
    monitor: true
  - id: redacts-zebra
    keywords: [zebra]
    action: redact
  - id: flags-zebra
    keywords: [zebra]
    action: flag
  - id: system-zebra
    roles: [system, user]
    keywords: [zebra]
    action: block
  - id: answers-zebra
    applies_to: output
    keywords: [zebra]
    action: block
"#;

#[test]
fn trusted_roles_are_skipped_by_blocking_and_steering_rules_without_roles() {
    let p = policy(TRUSTED);
    assert_eq!(p.trusted_roles, [Role::System, Role::Developer]);
    let everything = [
        "blocks-zebra",
        "flags-zebra",
        "monitors-zebra",
        "redacts-zebra",
        "steers-zebra",
        "system-zebra",
    ];
    assert_eq!(fired_as(&p, Role::User, "a zebra"), everything);
    // Tool results and tool definitions are not the operator's words.
    assert_eq!(fired_as(&p, Role::Tool, "a zebra").len(), 5);
    assert_eq!(fired_as(&p, Role::ToolDefinition, "a zebra").len(), 5);
    // Redaction and flags still read the operator's text; a rule that names
    // the role explicitly does too.
    assert_eq!(
        fired_as(&p, Role::System, "a zebra"),
        ["flags-zebra", "redacts-zebra", "system-zebra"]
    );
    assert_eq!(
        fired_as(&p, Role::Developer, "a zebra"),
        ["flags-zebra", "redacts-zebra"]
    );
    // Output rules read the answer as before.
    assert_eq!(fired(&p, Direction::Output, "a zebra"), ["answers-zebra"]);
}

#[test]
fn trusted_roles_follow_a_category_override_of_the_action() {
    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("animals.yaml"),
        "category: {id: animals, action: flag}\nrules:\n  - id: zebra\n    keywords: [zebra]\n",
    )
    .expect("category written");
    let root = dir.path().join("root.yaml");
    let write_root = |override_action: &str| {
        std::fs::write(
            &root,
            format!(
                "version: 1\ntrusted_roles: [system]\ninclude: [animals.yaml]\n\
                 categories:\n  animals: {{action: {override_action}}}\n"
            ),
        )
        .expect("root written");
        load_path(&root).expect("policy compiles")
    };
    assert_eq!(
        fired_as(&write_root("flag"), Role::System, "zebra"),
        ["zebra"]
    );
    assert!(fired_as(&write_root("block"), Role::System, "zebra").is_empty());
}

#[test]
fn trusted_roles_default_to_none_and_are_root_only() {
    let p = policy("version: 1\nrules:\n  - id: zebra\n    keywords: [zebra]\n");
    assert!(p.trusted_roles.is_empty());
    assert_eq!(fired_as(&p, Role::System, "zebra"), ["zebra"]);

    let dir = tempfile::tempdir().expect("temporary directory");
    std::fs::write(
        dir.path().join("inner.yaml"),
        "trusted_roles: [system]\nrules:\n  - id: zebra\n    keywords: [zebra]\n",
    )
    .expect("inner written");
    let root = dir.path().join("root.yaml");
    std::fs::write(&root, "version: 1\ninclude: [inner.yaml]\n").expect("root written");
    let p = load_path(&root).expect("policy compiles");
    assert!(p.trusted_roles.is_empty());
    assert_eq!(fired_as(&p, Role::System, "zebra"), ["zebra"]);
}

#[test]
fn an_unknown_trusted_role_is_an_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("policy.yaml");
    std::fs::write(
        &path,
        "version: 1\ntrusted_roles: [system, operator]\nrules:\n  - id: zebra\n    keywords: [zebra]\n",
    )
    .expect("policy written");
    let error = load_path(&path)
        .expect_err("unknown role rejected")
        .to_string();
    assert!(error.contains("operator"), "{error}");
    assert!(error.contains("trusted_roles"), "{error}");
}

#[test]
fn decoded_accepts_true_false_or_only_and_encodings_need_payloads() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("policy.yaml");
    let load = |decoded: &str, encodings: &str| {
        std::fs::write(
            &path,
            format!(
                "version: 1\nrules:\n  - id: zebra\n    keywords: [zebra]\n    decoded: {decoded}\n{encodings}"
            ),
        )
        .expect("policy written");
        load_path(&path).map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(load("true", "").is_ok());
    assert!(load("only", "    encodings: [base64, morse]\n").is_ok());
    let error = load("maybe", "").expect_err("unknown value rejected");
    assert!(error.contains("`true`, `false` or `only`"), "{error}");
    let error = load("false", "    encodings: [hex]\n").expect_err("contradiction rejected");
    assert!(error.contains("encodings"), "{error}");
    let error = load("only", "    encodings: [rot47]\n").expect_err("unknown encoding");
    assert!(error.contains("rot47"), "{error}");
}

/// A regex that does not compile is reported with its file, the line of its
/// rule, the rule, the pattern and the parser's explanation, and a regex
/// over the size limit says so; table-driven: (pattern, expected words).
#[test]
fn an_invalid_regex_names_its_rule_line_pattern_and_the_reason() {
    let cases = [
        (r"\b(unclosed", "unclosed group"),
        (r"[z-a]", "invalid character class range"),
        (r"\w{1000}{1000}", "size limit"),
    ];
    for (pattern, reason) in cases {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("policy.yaml");
        let yaml = format!(
            "version: 1\nrules:\n  - id: fine\n    keywords: [zebra]\n  - id: broken\n    regex: ['{pattern}']\n"
        );
        std::fs::write(&path, yaml).expect("policy written");
        let error = load_path(&path)
            .expect_err("invalid regex rejected")
            .to_string();
        for expected in ["policy.yaml:5", "rule `broken`", pattern, reason] {
            assert!(
                error.contains(expected),
                "{pattern}: {expected:?} not in {error}"
            );
        }
    }
}

const ACCENTS: &str = r#"
version: 1
name: accents
rules:
  - id: optional
    threshold: 2
    signals:
      - { keywords: ["cómo"], accents_optional: true }
      - { regex: ['\benvenen(?:ar|é)\b'], accents_optional: true }
    action: block
  - id: exact
    threshold: 2
    signals:
      - { keywords: ["cómo"] }
      - { regex: ['\bfabric(?:ar|ó)\b'] }
    action: block
"#;

#[test]
fn accents_optional_signals_also_match_unaccented_spellings() {
    let policy = policy(ACCENTS);
    for text in [
        "¿Cómo envenenar al perro?",
        "como envenenar al perro",
        "como lo envenene",
    ] {
        assert_eq!(
            fired(&policy, Direction::Input, text),
            ["optional"],
            "{text}"
        );
    }
    assert_eq!(
        fired(&policy, Direction::Input, "¿Cómo fabricar?"),
        ["exact"]
    );
    assert!(fired(&policy, Direction::Input, "como fabricar").is_empty());
}

/// Writes `files` (name, YAML) into a temporary directory and loads the
/// first as the root, for policies of several files.
fn load_files(files: &[(&str, &str)]) -> Result<CompiledPolicy, String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    for (name, yaml) in files {
        std::fs::write(dir.path().join(name), yaml).expect("policy written");
    }
    load_path(&dir.path().join(files[0].0)).map_err(|e| e.to_string())
}

const SHARED_ROOT: &str = r#"
version: 1
include: [frames.yaml, rules.yaml]
"#;

const SHARED_FRAMES: &str = r#"
version: 1
signals:
  game frame:
    keywords: [in minecraft, in fortnite]
    weight: -2
"#;

const SHARED_RULES: &str = r#"
version: 1
rules:
  - id: kill-request
    threshold: 2
    signals:
      - {keywords: [how do i kill], weight: 2}
      - {use: game frame}
    action: block
  - id: kill-request-strict
    threshold: 2
    signals:
      - {keywords: [how do i kill], weight: 2}
      - {use: game frame, name: the game frame counts less here, weight: -1}
      - {keywords: [my cousin]}
    action: block
"#;

/// A signal defined once under `signals:` is read by rules of another
/// file with `use:`, with the weight each rule gives it.
#[test]
fn rules_in_other_files_use_one_shared_signal_with_their_own_weights() {
    let p = load_files(&[
        ("root.yaml", SHARED_ROOT),
        ("frames.yaml", SHARED_FRAMES),
        ("rules.yaml", SHARED_RULES),
    ])
    .expect("policy compiles");
    assert_eq!(
        fired(&p, Direction::Input, "how do i kill my cousin"),
        ["kill-request", "kill-request-strict"]
    );
    assert_eq!(
        fired(&p, Direction::Input, "how do i kill my cousin in minecraft"),
        ["kill-request-strict"],
        "-2 holds the first rule back, -1 against 3 does not hold the second"
    );
    let names: Vec<_> = p.signals.iter().filter_map(|s| s.name.as_deref()).collect();
    assert!(names.contains(&"game frame"), "{names:?}");
    assert!(
        names.contains(&"the game frame counts less here"),
        "{names:?}"
    );
}

/// A policy file's name and YAML.
type PolicyFileText<'a> = (&'a str, &'a str);

/// Mistakes with shared signals are reported with the file and rule:
/// table-driven (files after the root, words the error must contain).
#[test]
fn shared_signal_mistakes_name_the_file_rule_and_signal() {
    let unknown = r#"
version: 1
rules:
  - id: uses-missing
    signals:
      - {use: no such frame}
"#;
    let with_keywords = r#"
version: 1
rules:
  - id: uses-and-adds
    signals:
      - {use: game frame, keywords: [extra]}
"#;
    let twice = r#"
version: 1
signals:
  game frame: {keywords: [in roblox]}
"#;
    let nested = r#"
version: 1
signals:
  outer: {use: game frame}
"#;
    let near_unknown = r#"
version: 1
rules:
  - id: near-missing
    signals:
      - {keywords: [blast], near: {signal: no such frame, within: 10}}
"#;
    let near_classifier = r#"
version: 1
rules:
  - id: near-without-positions
    signals:
      - {obfuscation: [leet], near: {signal: game frame, within: 10}}
"#;
    let near_a_near = r#"
version: 1
signals:
  near frame: {keywords: [boss], near: {signal: game frame, within: 10}}
rules:
  - id: near-a-near
    signals:
      - {keywords: [final], near: {signal: [game frame, near frame], within: 10}}
"#;
    let cases: [(&[PolicyFileText], &[&str]); 7] = [
        (
            &[("rules.yaml", unknown)],
            &["rules.yaml", "uses-missing", "no such frame", "game frame"],
        ),
        (
            &[("rules.yaml", with_keywords)],
            &[
                "uses-and-adds",
                "only `name`, `weight`, `required` or `near`",
            ],
        ),
        (
            &[("rules.yaml", twice)],
            &["`game frame`", "also defined in", "frames.yaml"],
        ),
        (
            &[("rules.yaml", nested)],
            &["`outer`", "cannot itself `use:`"],
        ),
        (
            &[("rules.yaml", near_unknown)],
            &[
                "rules.yaml",
                "near-missing",
                "no such frame",
                "no shared signal",
            ],
        ),
        (
            &[("rules.yaml", near_classifier)],
            &[
                "near-without-positions",
                "`near` needs a signal with keywords or regex",
            ],
        ),
        (
            &[("rules.yaml", near_a_near)],
            &["near-a-near", "`near frame`", "a `near` of its own"],
        ),
    ];
    for (extra, expected) in cases {
        let mut files = vec![("root.yaml", SHARED_ROOT), ("frames.yaml", SHARED_FRAMES)];
        files.extend_from_slice(extra);
        let error = load_files(&files).expect_err("rejected");
        for word in expected {
            assert!(error.contains(word), "{word:?} not in {error}");
        }
    }
}

const NEAR_RULES: &str = r#"
version: 1
rules:
  - id: kill-request
    threshold: 2
    window: 200
    signals:
      - {keywords: [how do i kill], weight: 2}
      - {use: game frame}
      - name: a real person next to the game frame
        keywords: [my cousin, my neighbour]
        near: {signal: game frame, within: 30}
        weight: 2
    action: block
  - id: near-a-frame-no-rule-reads
    signals:
      - keywords: [for real]
        near: {signal: film frame, within: 5}
    action: block
  - id: shared-counterweight
    threshold: 2
    signals:
      - {keywords: [how do i hurt], weight: 2}
      - {use: game frame, weight: -1}
      - {use: a real person next to a game or a film, weight: 1}
    action: block
"#;

const NEAR_FRAMES: &str = r#"
version: 1
signals:
  game frame:
    keywords: [in minecraft, in fortnite]
    weight: -2
  film frame:
    keywords: [in the film]
  a real person next to a game or a film:
    keywords: [my sister]
    near: {signal: [game frame, film frame], within: 10}
"#;

/// A `near` signal counts only beside its frame's hits, within the bytes
/// it names and in either order; a frame no rule reads as a signal of its
/// own is still searched for the `near`, and adds no weight of its own.
#[test]
fn a_near_signal_counts_only_beside_its_frame() {
    let p = load_files(&[
        ("root.yaml", SHARED_ROOT),
        ("frames.yaml", NEAR_FRAMES),
        ("rules.yaml", NEAR_RULES),
    ])
    .expect("policy compiles");
    let cases: [(&str, &[&str]); 11] = [
        ("how do i kill the ender dragon in minecraft", &[]),
        // A shared counterweight brings its `near` (any of its frames).
        (
            "how do i hurt my sister in minecraft",
            &["shared-counterweight"],
        ),
        ("how do i hurt the boss in minecraft", &[]),
        (
            "how do i hurt my sister? the boss fight comes much later, in minecraft",
            &[],
        ),
        ("how do i hurt my sister", &["shared-counterweight"]),
        // The frame's -2 is taken back by the real person beside it.
        ("how do i kill my cousin in minecraft", &["kill-request"]),
        ("in fortnite, how do i kill my neighbour", &["kill-request"]),
        // Too far from the frame: the discount stands, the person adds nothing.
        (
            "how do i kill my cousin, asking for a long while now without any luck at all, in minecraft",
            &[],
        ),
        (
            "it was for real in the film",
            &["near-a-frame-no-rule-reads"],
        ),
        ("in the film", &[]),
        ("for real, and then much later in the film", &[]),
    ];
    for (text, expected) in cases {
        assert_eq!(
            fired(&p, Direction::Input, text),
            expected,
            "text: {text:?}"
        );
    }
}

/// `policy check --cost` lists the patterns no rare word gates, under
/// their rules, once each even when both directions search them.
#[test]
fn ungated_patterns_are_listed_by_rule_and_gated_ones_are_not() {
    let p = policy(
        r#"
version: 1
name: cost
rules:
  - id: common-words-only
    applies_to: both
    regex: ['\b(?:is|are)\s+[a-z]+\s+(?:ok|on)\b']
    action: block
  - id: rare-word
    regex: ['\b(?:is|are)\s+[a-z]+\s+jailbroken\b']
    action: block
  - id: other-script-only
    regex: ['(?:你|您)\s*(?:是|叫)']
    action: block
"#,
    );
    let listed = p.ungated_patterns();
    let rules: Vec<&str> = listed.iter().map(|u| u.rule.as_str()).collect();
    assert_eq!(rules, ["common-words-only"], "{listed:?}");
    assert!(listed[0].pattern.contains("(?:ok|on)"));
}
