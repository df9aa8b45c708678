//! The default policy against the project's own labelled fixtures
//! (`tests/fixtures/*.jsonl`, our own writing; since session 33 the
//! harmful model also learns from the non-sealed files, listed in
//! `scripts/harmful_training_fixtures.txt`):
//! every everyday (`benign`) line stays allowed, whatever file it is in,
//! every encoded attack is caught, and recall on our own attack and
//! harmful lines does not fall below the floor below. `palisade eval
//! tests/fixtures/*.jsonl` prints the same figures per file.

use std::path::{Path, PathBuf};

use palisade::engine::{Verdict, verdict_as};
use palisade::policy::{CompiledPolicy, Direction, Role, load_path};
use serde::Deserialize;

/// Recall on the own attack and harmful lines (84% when this was written;
/// the probe files hold lines no rule was written for, by design).
const RECALL_FLOOR: f64 = 0.80;

#[derive(Deserialize)]
struct Line {
    text: String,
    label: String,
    #[serde(default)]
    role: Option<Role>,
    /// `output` for a model answer (read by the output rules).
    #[serde(default)]
    direction: Option<Direction>,
}

fn fixture_files() -> Result<Vec<PathBuf>, String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let entries = std::fs::read_dir(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

fn lines(path: &Path) -> Result<Vec<(usize, Line)>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            serde_json::from_str(l)
                .map(|line| (i + 1, line))
                .map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))
        })
        .collect()
}

fn default_policy() -> Result<CompiledPolicy, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/default.yaml");
    load_path(&path).map_err(|e| e.to_string())
}

#[test]
fn own_fixtures_keep_their_verdicts() {
    let policy = default_policy().expect("default policy compiles");
    let mut wrongly_blocked = Vec::new();
    let mut missed_encoded = Vec::new();
    let (mut positives, mut caught) = (0usize, 0usize);
    for file in fixture_files().expect("tests/fixtures readable") {
        let name = file.file_name().map(|n| n.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        for (number, line) in lines(&file).expect("fixture lines parse") {
            let direction = line.direction.unwrap_or(Direction::Input);
            let role = line.role.unwrap_or(direction.default_role());
            let (verdict, rules) = verdict_as(&policy, direction, role, &line.text);
            let blocked = (verdict == Verdict::Block).then_some(rules);
            match line.label.as_str() {
                "benign" => {
                    if let Some(rules) = blocked {
                        wrongly_blocked.push(format!("{name}:{number} {rules:?}"));
                    }
                }
                "attack" | "harmful" => {
                    positives += 1;
                    caught += usize::from(blocked.is_some());
                    if name == "encoded_attacks.jsonl" && blocked.is_none() {
                        missed_encoded.push(format!("{name}:{number}"));
                    }
                }
                other => panic!("{name}:{number}: unknown label {other:?}"),
            }
        }
    }
    assert!(
        wrongly_blocked.is_empty(),
        "everyday lines blocked: {wrongly_blocked:#?}"
    );
    assert!(
        missed_encoded.is_empty(),
        "encoded attacks missed: {missed_encoded:#?}"
    );
    assert!(positives > 0, "no attack or harmful fixture lines found");
    let recall = caught as f64 / positives as f64;
    assert!(
        recall >= RECALL_FLOOR,
        "own attack/harmful recall {caught}/{positives} = {recall:.3} is below {RECALL_FLOOR}"
    );
}
