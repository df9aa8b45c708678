//! `palisade policy ...`: authoring tools.

use std::path::PathBuf;
use std::process::ExitCode;

/// Loads and compiles each policy; prints a summary or the first error,
/// and with `cost` the patterns that are searched over every text.
pub fn check(paths: Vec<PathBuf>, cost: bool) -> ExitCode {
    let paths = if paths.is_empty() {
        vec![super::default_policy()]
    } else {
        paths
    };
    let mut failed = false;
    for path in &paths {
        match crate::policy::load_path(path) {
            Ok(policy) => {
                super::print_stdout(&format!(
                    "ok: {} — policy `{}`: {} rules, {} categories, {} files",
                    path.display(),
                    policy.name,
                    policy.rules.len(),
                    policy.categories.len(),
                    policy.files.len()
                ));
                if cost {
                    super::print_stdout(&cost_report(&policy.ungated_patterns()));
                }
            }
            Err(e) => {
                failed = true;
                eprintln!("error: {e}");
            }
        }
    }
    if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The `--cost` listing: a count, then one line per pattern under its rule.
fn cost_report(patterns: &[crate::policy::UngatedPattern]) -> String {
    let rules: std::collections::BTreeSet<&str> =
        patterns.iter().map(|p| p.rule.as_str()).collect();
    let mut out = format!(
        "{} patterns in {} rules have no required word of four or more letters and are \
         searched over every text (give each a rarer word that every match needs, or move \
         short common words into a separate signal):",
        patterns.len(),
        rules.len()
    );
    let mut last_rule = "";
    for p in patterns {
        if p.rule != last_rule {
            out.push_str(&format!("\n  {}", p.rule));
            last_rule = &p.rule;
        }
        out.push_str(&format!("\n    [{}] {}", p.form.as_str(), p.pattern));
    }
    out
}

/// One example that did not behave as written.
struct Failure {
    location: String,
    rule: String,
    expected: &'static str,
    fired: Vec<String>,
}

/// Runs every rule's `examples` (block: the rule must fire; allow: it must
/// not) against the compiled policy, like a test runner.
pub fn test(paths: Vec<PathBuf>) -> ExitCode {
    use crate::engine::{Segment, evaluate};
    use crate::policy::{AppliesTo, Direction, Role};

    let paths = if paths.is_empty() {
        vec![super::default_policy()]
    } else {
        paths
    };
    let mut failures = Vec::new();
    let mut passed = 0usize;
    for path in &paths {
        let files = match crate::policy::load_tree(std::slice::from_ref(path)) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        let policy = match crate::policy::compile(&files) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        };
        for file in &files {
            for rule in &file.file.rules {
                let Some(examples) = &rule.examples else {
                    continue;
                };
                let Some(compiled) = policy.rules.iter().find(|r| *r.id == *rule.id) else {
                    continue;
                };
                let (direction, role) = match compiled.applies_to {
                    AppliesTo::Output => (Direction::Output, Role::Assistant),
                    _ => (
                        Direction::Input,
                        compiled
                            .roles
                            .as_ref()
                            .and_then(|r| r.first().copied())
                            .unwrap_or(Role::User),
                    ),
                };
                let cases = examples
                    .block
                    .iter()
                    .map(|t| (t, true))
                    .chain(examples.allow.iter().map(|t| (t, false)));
                for (text, must_fire) in cases {
                    let decision = evaluate(
                        &policy,
                        direction,
                        &[Segment::new(role, "example", text.as_str())],
                    );
                    let fired: Vec<String> =
                        decision.rule_ids().iter().map(|s| s.to_string()).collect();
                    if fired.contains(&rule.id) == must_fire {
                        passed += 1;
                    } else {
                        failures.push(Failure {
                            location: format!(
                                "{}:{}",
                                file.path.display(),
                                line_of_text(&file.source, text)
                            ),
                            rule: rule.id.clone(),
                            expected: if must_fire { "block" } else { "allow" },
                            fired,
                        });
                    }
                }
            }
        }
    }
    for f in &failures {
        super::print_stdout(&format!(
            "FAIL {} rule `{}`: expected {} example to {}; rules fired: [{}]",
            f.location,
            f.rule,
            f.expected,
            if f.expected == "block" {
                "fire"
            } else {
                "not fire"
            },
            f.fired.join(", ")
        ));
    }
    super::print_stdout(&format!("{} passed, {} failed", passed, failures.len()));
    if failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Line of an example in its file (first line containing its opening words).
fn line_of_text(source: &str, text: &str) -> usize {
    let probe: String = text.chars().take(40).collect();
    source
        .lines()
        .position(|l| l.contains(probe.as_str()))
        .map(|i| i + 1)
        .unwrap_or(0)
}

/// Prints the JSON Schema of the policy format, for editors
/// (`# yaml-language-server: $schema=...`).
pub fn schema() -> ExitCode {
    let schema = schemars::schema_for!(crate::policy::model::PolicyFile);
    match serde_json::to_string_pretty(&schema) {
        Ok(text) => {
            super::print_stdout(&text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
