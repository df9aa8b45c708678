//! `palisade eval`: detection measured on labelled JSONL. Each text is one
//! message on the input side, written by the line's `role` (default `user`),
//! or, for a line with `"direction": "output"`, a model answer read by the
//! output rules (what refusal enforcement replaces or cuts);
//! it counts as flagged when the decision is `block`, as steered when it is
//! `steer` (forwarded with the safety message, the answer checked) and as
//! recorded when only a `flag` rule fired; steered and recorded texts are
//! reported apart. Reports totals per label and per source.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::engine::{Verdict, verdict_as};
use crate::policy::{CompiledPolicy, Direction, Role};

/// Labels a line may carry.
pub const LABELS: [&str; 3] = ["attack", "harmful", "benign"];

#[derive(Debug, Deserialize)]
struct Line {
    text: String,
    label: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    direction: Option<String>,
}

/// One labelled text.
#[derive(Debug, Clone)]
pub struct Example {
    /// The text.
    pub text: String,
    /// `attack`, `harmful` or `benign`.
    pub label: String,
    /// Where it came from (defaults to the file name).
    pub source: String,
    /// Who sent it (`role` of the line; default `user` on input,
    /// `assistant` on output).
    pub role: Role,
    /// Read as a request (`input`, default) or as a model answer (`output`).
    pub direction: Direction,
    /// `file:line`, to find it again.
    pub origin: String,
}

/// Counts for one label.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Count {
    /// Texts seen.
    pub total: u64,
    /// Texts blocked.
    pub flagged: u64,
    /// Texts steered: forwarded with the safety system message, the answer
    /// then checked. Not counted in `flagged`.
    pub steered: u64,
    /// Texts only recorded: a rule with the `flag` action fired (such as
    /// the flag-only categories of the default policy) and nothing blocked
    /// or steered. Not counted in `flagged`; reported so that a policy
    /// author sees what switching those rules to `block` would catch.
    pub recorded: u64,
}

/// The whole report, in the `--json` shape.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// Per label.
    pub by_label: BTreeMap<String, Count>,
    /// Per source, then per label.
    pub by_source: BTreeMap<String, BTreeMap<String, Count>>,
    /// Wall time of the evaluation (not the loading).
    pub seconds: f64,
    /// Bytes of text evaluated.
    pub bytes: u64,
    /// Every wrong decision, when asked for (`--mistakes`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub mistakes: Vec<Mistake>,
    /// Per rule id, per label: how many texts the rule fired on (whatever
    /// the decision). It answers "which rule made the benign count rise"
    /// without printing any text, which matters on data that must not be
    /// quoted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, BTreeMap<String, u64>>,
}

/// A wrong decision: an attack or harmful text let through, or a benign one
/// blocked (with the rules that fired). Listing them is how a policy
/// author finds what to study next without writing a script.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mistake {
    /// `file:line`.
    pub origin: String,
    /// The line's label.
    pub label: String,
    /// The rules that fired: those that blocked a benign text, or for a
    /// miss those that fired without blocking (`flag`, `steer`), often none.
    pub rules: Vec<String>,
    /// The start of the text.
    pub text: String,
}

/// How much of a text a mistake quotes.
const QUOTED_CHARS: usize = 160;

/// Reads a JSONL file; a broken line, unknown label or unknown role is an
/// error naming the line.
pub fn read_examples(path: &Path) -> Result<Vec<Example>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let default_source = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("unknown")
        .to_string();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line = serde_json::from_str(raw)
            .map_err(|e| format!("{}:{}: not a valid line: {e}", path.display(), i + 1))?;
        if !LABELS.contains(&line.label.as_str()) {
            return Err(format!(
                "{}:{}: unknown label `{}` (expected attack, harmful or benign)",
                path.display(),
                i + 1,
                line.label
            ));
        }
        let direction = match line.direction.as_deref() {
            None | Some("input") => Direction::Input,
            Some("output") => Direction::Output,
            Some(other) => {
                return Err(format!(
                    "{}:{}: unknown direction `{other}` (expected input or output)",
                    path.display(),
                    i + 1
                ));
            }
        };
        let role = match line.role.as_deref() {
            None => direction.default_role(),
            Some(name) => Role::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
                format!(
                    "{}:{}: unknown role `{name}` (expected one of {})",
                    path.display(),
                    i + 1,
                    known.join(", ")
                )
            })?,
        };
        out.push(Example {
            text: line.text,
            label: line.label,
            source: line.source.unwrap_or_else(|| default_source.clone()),
            role,
            direction,
            origin: format!("{}:{}", path.display(), i + 1),
        });
    }
    Ok(out)
}

/// Evaluates all examples on every core.
/// With `keep_mistakes`, the report lists every wrong decision too.
pub fn evaluate_all(policy: &CompiledPolicy, examples: &[Example], keep_mistakes: bool) -> Report {
    let start = Instant::now();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .max(1);
    let chunk = examples.len().div_ceil(threads).max(1);
    let verdicts: Vec<(Verdict, Vec<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = examples
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|e| verdict_as(policy, e.direction, e.role, &e.text))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut report = Report {
        seconds: start.elapsed().as_secs_f64(),
        ..Report::default()
    };
    for (example, (verdict, rules)) in examples.iter().zip(verdicts) {
        let flagged = verdict == Verdict::Block;
        let steered = verdict == Verdict::Steer;
        let recorded = verdict == Verdict::Flag;
        report.bytes += example.text.len() as u64;
        count_rules(&mut report.rules, &example.label, &rules);
        if keep_mistakes && flagged == (example.label == "benign") {
            report.mistakes.push(Mistake {
                origin: example.origin.clone(),
                label: example.label.clone(),
                // A missed text lists the rules that fired without blocking
                // (flag, steer, redact): that is where a policy author looks.
                rules,
                text: example.text.chars().take(QUOTED_CHARS).collect(),
            });
        }
        for count in [
            report.by_label.entry(example.label.clone()).or_default(),
            report
                .by_source
                .entry(example.source.clone())
                .or_default()
                .entry(example.label.clone())
                .or_default(),
        ] {
            count.total += 1;
            count.flagged += u64::from(flagged);
            count.steered += u64::from(steered);
            count.recorded += u64::from(recorded);
        }
    }
    report
}

/// Adds one text's fired rules to the per-rule counts, each rule once
/// however many segments or decoded payloads it fired on.
fn count_rules(
    counts: &mut BTreeMap<String, BTreeMap<String, u64>>,
    label: &str,
    rules: &[String],
) {
    let distinct: std::collections::BTreeSet<&String> = rules.iter().collect();
    for rule in distinct {
        *counts
            .entry(rule.clone())
            .or_default()
            .entry(label.to_string())
            .or_default() += 1;
    }
}

/// Runs the command.
pub fn run(
    policy_path: Option<PathBuf>,
    json: bool,
    mistakes: bool,
    rules: bool,
    files: Vec<PathBuf>,
) -> ExitCode {
    let path = policy_path.unwrap_or_else(super::default_policy);
    let policy = match crate::policy::load_path(&path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut examples = Vec::new();
    for file in &files {
        match read_examples(file) {
            Ok(mut e) => examples.append(&mut e),
            Err(message) => {
                eprintln!("error: {message}");
                return ExitCode::from(2);
            }
        }
    }
    let mut report = evaluate_all(&policy, &examples, mistakes);
    if !rules {
        report.rules.clear();
    }
    if json {
        match serde_json::to_string(&report) {
            Ok(text) => super::print_stdout(&text),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        super::print_stdout(tables(&report).trim_end());
    }
    ExitCode::SUCCESS
}

fn rate(c: &Count) -> f64 {
    if c.total == 0 {
        0.0
    } else {
        100.0 * c.flagged as f64 / c.total as f64
    }
}

fn describe(label: &str) -> &'static str {
    if label == "benign" {
        "false positives"
    } else {
        "recall"
    }
}

/// The human-readable report; printed in one piece so a closed pipe
/// (`| head`) ends the output quietly instead of panicking.
fn tables(report: &Report) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>8} {:>8}  meaning",
        "label", "total", "blocked", "rate"
    );
    for (label, c) in &report.by_label {
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>8} {:>7.2}%  {}",
            label,
            c.total,
            c.flagged,
            rate(c),
            describe(label)
        );
    }
    let apart = [
        (
            "steered (forwarded with the safety message, not counted above)",
            (|c: &Count| c.steered) as fn(&Count) -> u64,
        ),
        (
            "recorded only (a flag rule fired, nothing blocked; not counted above)",
            |c: &Count| c.recorded,
        ),
    ];
    for (heading, count_of) in apart {
        let parts: Vec<String> = report
            .by_label
            .iter()
            .filter(|(_, c)| count_of(c) > 0)
            .map(|(label, c)| format!("{label} {}/{}", count_of(c), c.total))
            .collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "{heading}: {}", parts.join(", "));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<40} {:<10} {:>8} {:>8} {:>8}",
        "source", "label", "total", "blocked", "rate"
    );
    for (source, labels) in &report.by_source {
        for (label, c) in labels {
            let name: String = source.chars().take(40).collect();
            let _ = writeln!(
                out,
                "{:<40} {:<10} {:>8} {:>8} {:>7.2}%",
                name,
                label,
                c.total,
                c.flagged,
                rate(c)
            );
        }
    }
    let _ = writeln!(out);
    if !report.mistakes.is_empty() {
        let _ = writeln!(
            out,
            "mistakes (missed attack/harmful, blocked benign and the rules):"
        );
        for m in &report.mistakes {
            let text: String = m.text.replace(['\n', '\r', '\t'], " ");
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}",
                m.origin,
                m.label,
                m.rules.join(","),
                text
            );
        }
        let _ = writeln!(out);
    }
    if !report.rules.is_empty() {
        rule_table(&mut out, &report.rules);
    }
    let mb = report.bytes as f64 / 1e6;
    let _ = writeln!(
        out,
        "{:.2} MB in {:.2} s ({:.1} MB/s on all cores)",
        mb,
        report.seconds,
        if report.seconds > 0.0 {
            mb / report.seconds
        } else {
            0.0
        }
    );
    out
}

/// Per rule, the texts of each label it fired on; rules firing on benign
/// texts first (those are the ones a policy author looks at), then by how
/// many texts they fired on.
fn rule_table(out: &mut String, rules: &BTreeMap<String, BTreeMap<String, u64>>) {
    use std::fmt::Write;
    let of = |labels: &BTreeMap<String, u64>, label: &str| labels.get(label).copied().unwrap_or(0);
    let mut rows: Vec<(&String, [u64; 3])> = rules
        .iter()
        .map(|(rule, labels)| (rule, LABELS.map(|label| of(labels, label))))
        .collect();
    rows.sort_by(|(a, ca), (b, cb)| {
        (cb[2], cb.iter().sum::<u64>(), a).cmp(&(ca[2], ca.iter().sum::<u64>(), b))
    });
    let _ = writeln!(
        out,
        "{:<48} {:>8} {:>8} {:>8}",
        "rule (texts it fired on)", LABELS[0], LABELS[1], LABELS[2]
    );
    for (rule, [attack, harmful, benign]) in rows {
        let _ = writeln!(out, "{rule:<48} {attack:>8} {harmful:>8} {benign:>8}");
    }
    let _ = writeln!(out);
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    const POLICY: &str = r#"
version: 1
name: eval-test
rules:
  - id: purple
    keywords: ["purple elephant"]
    action: block
"#;

    fn write(contents: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(contents.as_bytes()).unwrap();
        file
    }

    /// A policy compiled from YAML text.
    fn policy_of(yaml: &str) -> CompiledPolicy {
        crate::policy::load_path(write(yaml).path()).unwrap()
    }

    #[test]
    fn counts_per_label_and_lists_each_mistake_with_its_origin() {
        let policy = policy_of(POLICY);
        let data = write(concat!(
            r#"{"text": "the purple elephant says hi", "label": "attack"}"#,
            "\n",
            r#"{"text": "a grey elephant", "label": "attack"}"#,
            "\n\n",
            r#"{"text": "I painted a purple elephant", "label": "benign", "source": "mine"}"#,
            "\n",
            r#"{"text": "hello", "label": "benign"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();

        let report = evaluate_all(&policy, &examples, true);

        let attack = report.by_label["attack"];
        let benign = report.by_label["benign"];
        assert_eq!((attack.total, attack.flagged), (2, 1));
        assert_eq!((benign.total, benign.flagged), (2, 1));
        assert_eq!(report.by_source["mine"]["benign"].flagged, 1);
        let file = data.path().display();
        assert_eq!(
            report.mistakes,
            [
                Mistake {
                    origin: format!("{file}:2"),
                    label: "attack".into(),
                    rules: vec![],
                    text: "a grey elephant".into(),
                },
                Mistake {
                    origin: format!("{file}:4"),
                    label: "benign".into(),
                    rules: vec!["purple".into()],
                    text: "I painted a purple elephant".into(),
                },
            ]
        );
        assert!(evaluate_all(&policy, &examples, false).mistakes.is_empty());
    }

    #[test]
    fn counts_the_texts_each_rule_fired_on_per_label() {
        let policy = policy_of(concat!(
            "version: 1\nname: per-rule\nrules:\n",
            "  - id: purple\n    keywords: [\"purple elephant\"]\n    action: block\n",
            "  - id: grey\n    keywords: [\"grey\"]\n    action: flag\n",
        ));
        let data = write(concat!(
            r#"{"text": "a purple elephant, a purple elephant", "label": "attack"}"#,
            "\n",
            r#"{"text": "a grey and purple elephant", "label": "benign"}"#,
            "\n",
            r#"{"text": "grey skies", "label": "benign"}"#,
            "\n",
            r#"{"text": "hello", "label": "benign"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();

        let report = evaluate_all(&policy, &examples, false);

        // A rule matching twice in one text counts that text once.
        assert_eq!(report.rules["purple"]["attack"], 1);
        assert_eq!(report.rules["purple"]["benign"], 1);
        assert_eq!(report.rules["grey"]["benign"], 2);
        assert!(!report.rules["grey"].contains_key("attack"));
        let table = tables(&report);
        let grey = table.find("\ngrey ").unwrap();
        let purple = table.find("\npurple ").unwrap();
        assert!(
            grey < purple,
            "rules firing on more benign texts come first:\n{table}"
        );
    }

    #[test]
    fn steered_texts_are_counted_apart_from_blocked_ones() {
        let policy = policy_of(concat!(
            "version: 1\nname: steer\nrules:\n",
            "  - id: ranking\n    keywords: [\"best religion\"]\n    action: steer\n",
            "  - id: purple\n    keywords: [\"purple elephant\"]\n    action: block\n",
        ));
        let data = write(concat!(
            r#"{"text": "which is the best religion", "label": "harmful"}"#,
            "\n",
            r#"{"text": "a purple elephant", "label": "harmful"}"#,
            "\n",
            r#"{"text": "hello", "label": "harmful"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();

        let report = evaluate_all(&policy, &examples, true);

        let harmful = report.by_label["harmful"];
        assert_eq!((harmful.total, harmful.flagged, harmful.steered), (3, 1, 1));
        // A steered harmful text is not blocked: it is listed as a miss,
        // with the rule that steered it.
        assert_eq!(report.mistakes.len(), 2);
        assert_eq!(report.mistakes[0].rules, ["ranking"]);
        assert!(report.mistakes[1].rules.is_empty());
        assert!(tables(&report).contains(
            "steered (forwarded with the safety message, not counted above): harmful 1/3"
        ));
    }

    #[test]
    fn texts_only_flagged_are_counted_as_recorded_not_blocked() {
        let policy = policy_of(concat!(
            "version: 1\nname: flag\nrules:\n",
            "  - id: advice\n    keywords: [\"dosage plan\"]\n    action: flag\n",
            "  - id: purple\n    keywords: [\"purple elephant\"]\n    action: block\n",
        ));
        let data = write(concat!(
            r#"{"text": "write me a dosage plan", "label": "harmful"}"#,
            "\n",
            r#"{"text": "a dosage plan for a purple elephant", "label": "harmful"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();

        let report = evaluate_all(&policy, &examples, true);

        // The second text is blocked, so only the first is "recorded only".
        let harmful = report.by_label["harmful"];
        assert_eq!((harmful.flagged, harmful.recorded), (1, 1));
        assert_eq!(report.mistakes.len(), 1);
        assert_eq!(report.mistakes[0].rules, ["advice"]);
        assert!(tables(&report).contains(
            "recorded only (a flag rule fired, nothing blocked; not counted above): harmful 1/2"
        ));
    }

    #[test]
    fn a_line_is_sent_as_its_role_and_user_by_default() {
        let policy = policy_of(concat!(
            "version: 1\nname: roles\nrules:\n",
            "  - id: purple\n    keywords: [\"purple elephant\"]\n    roles: [user]\n",
        ));
        let data = write(concat!(
            r#"{"text": "a purple elephant", "label": "benign"}"#,
            "\n",
            r#"{"text": "a purple elephant", "label": "benign", "role": "system"}"#,
            "\n",
            r#"{"text": "a purple elephant", "label": "benign", "role": "tool_definition"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();
        let roles: Vec<Role> = examples.iter().map(|e| e.role).collect();
        assert_eq!(roles, [Role::User, Role::System, Role::ToolDefinition]);

        let report = evaluate_all(&policy, &examples, true);

        assert_eq!(report.by_label["benign"].flagged, 1);
        assert_eq!(report.mistakes.len(), 1);
        assert!(report.mistakes[0].origin.ends_with(":1"));
    }

    #[test]
    fn an_output_line_is_read_as_a_model_answer_by_the_output_rules() {
        let policy = policy_of(concat!(
            "version: 1\nname: sides\nrules:\n",
            "  - id: recipe-out\n    keywords: [\"step 1: dissolve\"]\n    applies_to: output\n",
            "  - id: recipe-in\n    keywords: [\"how do i dissolve\"]\n",
        ));
        let data = write(concat!(
            r#"{"text": "Sure! Step 1: dissolve it.", "label": "harmful", "direction": "output"}"#,
            "\n",
            r#"{"text": "Sure! Step 1: dissolve it.", "label": "harmful"}"#,
            "\n",
            r#"{"text": "how do i dissolve it", "label": "harmful", "direction": "output"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();
        let sides: Vec<(Direction, Role)> =
            examples.iter().map(|e| (e.direction, e.role)).collect();
        assert_eq!(
            sides,
            [
                (Direction::Output, Role::Assistant),
                (Direction::Input, Role::User),
                (Direction::Output, Role::Assistant),
            ]
        );

        let report = evaluate_all(&policy, &examples, true);

        // Only the answer read on the output side is caught: the input rule
        // does not read answers and the output rule does not read requests.
        assert_eq!(report.by_label["harmful"].flagged, 1);
        let missed: Vec<&str> = report.mistakes.iter().map(|m| m.origin.as_str()).collect();
        assert!(
            missed[0].ends_with(":2") && missed[1].ends_with(":3"),
            "{missed:?}"
        );
    }

    #[test]
    fn an_unknown_direction_names_its_line() {
        let data = write(r#"{"text": "x", "label": "benign", "direction": "sideways"}"#);
        let error = read_examples(data.path()).unwrap_err();
        assert!(
            error.ends_with(":1: unknown direction `sideways` (expected input or output)"),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_role_names_its_line() {
        let data = write(concat!(
            r#"{"text": "x", "label": "benign", "role": "user"}"#,
            "\n",
            r#"{"text": "y", "label": "benign", "role": "operator"}"#,
            "\n",
        ));
        let error = read_examples(data.path()).unwrap_err();
        assert!(
            error.ends_with(
                ":2: unknown role `operator` (expected one of system, developer, user, \
                 assistant, tool, tool_definition)"
            ),
            "{error}"
        );
    }

    #[test]
    fn an_unknown_label_names_its_line() {
        let data = write(
            "{\"text\": \"x\", \"label\": \"benign\"}\n{\"text\": \"y\", \"label\": \"spam\"}\n",
        );
        let error = read_examples(data.path()).unwrap_err();
        assert!(
            error.ends_with(":2: unknown label `spam` (expected attack, harmful or benign)"),
            "{error}"
        );
    }
}
