//! `palisade scan`: one text through a policy, decision as JSON.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::engine::{Segment, Verdict, evaluate};
use crate::policy::{Direction, Role};

/// Scans `text` (or standard input) and prints the decision.
pub fn run(policy_path: Option<PathBuf>, output: bool, text: Option<String>) -> ExitCode {
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
    match serde_json::to_string_pretty(&decision) {
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
