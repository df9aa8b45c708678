//! `palisade scan`: one text through a policy, decision as JSON.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::detect::normalize::normalize;
use crate::engine::{Segment, Verdict, evaluate};
use crate::policy::{Direction, Role};

/// Scans `text` (or standard input) and prints the decision.
/// With `views`, the output also shows the normalised and deobfuscated forms the matchers read
/// and the obfuscation signs counted, so a policy author can see why a pattern does or does not
/// match without reading Rust.
pub fn run(
    policy_path: Option<PathBuf>,
    output: bool,
    views: bool,
    text: Option<String>,
) -> ExitCode {
    let path = policy_path.unwrap_or_else(super::default_policy);
    let policy = match crate::policy::load_path(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let text = match text.as_deref() {
        Some(t) if t != "-" => t.to_string(),
        _ => {
            let mut buffer = Vec::new();
            if let Err(e) = std::io::stdin().read_to_end(&mut buffer) {
                eprintln!("error: cannot read standard input: {e}");
                return ExitCode::from(2);
            }
            String::from_utf8_lossy(&buffer).into_owned()
        }
    };
    let (direction, role) = if output {
        (Direction::Output, Role::Assistant)
    } else {
        (Direction::Input, Role::User)
    };
    let decision = evaluate(
        &policy,
        direction,
        &[Segment::new(role, "text", text.as_str())],
    );
    let json = if views {
        with_views(&decision, &text)
    } else {
        serde_json::to_string_pretty(&decision)
    };
    match json {
        Ok(json) => super::print_stdout(&json),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    }
    if decision.verdict == Verdict::Block {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// The decision plus the detection views of `text` as one JSON object.
fn with_views(decision: &crate::engine::Decision, text: &str) -> serde_json::Result<String> {
    let n = normalize(text);
    let mut value = serde_json::to_value(decision)?;
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "views".to_string(),
            serde_json::json!({
                "normalized": n.normalized.text,
                "deobfuscated": n.deobfuscated.text,
                "obfuscation": n.signs,
            }),
        );
    }
    serde_json::to_string_pretty(&value)
}
