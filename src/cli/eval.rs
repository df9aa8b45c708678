//! `palisade eval`: detection measured on labelled JSONL. Each text is one
//! message on the input side, written by the line's `role` (default `user`),
//! or, for a line with `"direction": "output"`, a model answer read by the
//! output rules (what refusal enforcement replaces or cuts);
//! it counts as flagged when the decision is `block`, as steered when it is
//! `steer` (forwarded with the safety message, the answer checked) and as
//! recorded when only a `flag` rule fired; steered and recorded texts are
//! reported apart. Reports totals per label and per group of lines: by
//! source (default), by file, or by category (optionally its first parts
//! only, for taxonomies written `family:subfamily:leaf`).

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
    category: Option<String>,
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
    /// The line's `category`, if it has one.
    pub category: Option<String>,
    /// The file it was read from.
    pub file: String,
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
    /// What the lines are grouped by in `by_group` (`source`, `file`,
    /// `category` or `category:N`).
    pub group_by: String,
    /// Per group (see `group_by`), then per label.
    pub by_group: BTreeMap<String, BTreeMap<String, Count>>,
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

/// How `eval` groups lines in its second table. One file often mixes
/// several sources, and a public set's `category` (a taxonomy such as
/// `cyberseceval_pi:multilingual:direct:few_shot_attack:Korean`) says which
/// technique or language a policy misses without printing any text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GroupBy {
    /// The line's `source` (default: its file's name).
    #[default]
    Source,
    /// The file the line was read from.
    File,
    /// The line's `category`; with a depth, only its first `depth`
    /// colon-separated parts.
    Category {
        /// How many parts to keep (`None`: all).
        depth: Option<usize>,
    },
}

impl std::str::FromStr for GroupBy {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let expected = "expected source, file, category or category:N (N >= 1)";
        match value.split_once(':') {
            None => match value {
                "source" => Ok(GroupBy::Source),
                "file" => Ok(GroupBy::File),
                "category" => Ok(GroupBy::Category { depth: None }),
                _ => Err(format!("unknown grouping `{value}` ({expected})")),
            },
            Some(("category", depth)) => match depth.parse::<usize>() {
                Ok(depth) if depth >= 1 => Ok(GroupBy::Category { depth: Some(depth) }),
                _ => Err(format!("bad category depth `{depth}` ({expected})")),
            },
            Some(_) => Err(format!("unknown grouping `{value}` ({expected})")),
        }
    }
}

impl std::fmt::Display for GroupBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GroupBy::Source => f.write_str("source"),
            GroupBy::File => f.write_str("file"),
            GroupBy::Category { depth: None } => f.write_str("category"),
            GroupBy::Category { depth: Some(n) } => write!(f, "category:{n}"),
        }
    }
}

impl GroupBy {
    /// The group `example` falls in; a line without a category is in
    /// `(none)`.
    fn key_of(self, example: &Example) -> String {
        match self {
            GroupBy::Source => example.source.clone(),
            GroupBy::File => example.file.clone(),
            GroupBy::Category { depth } => match (&example.category, depth) {
                (None, _) => "(none)".to_string(),
                (Some(category), None) => category.clone(),
                (Some(category), Some(n)) => {
                    category.split(':').take(n).collect::<Vec<_>>().join(":")
                }
            },
        }
    }
}

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
            category: line.category,
            file: path.display().to_string(),
            role,
            direction,
            origin: format!("{}:{}", path.display(), i + 1),
        });
    }
    Ok(out)
}

/// Evaluates all examples on every core, counting them per label and per
/// group (`group_by`). With `keep_mistakes`, the report lists every wrong
/// decision too.
pub fn evaluate_all(
    policy: &CompiledPolicy,
    examples: &[Example],
    group_by: GroupBy,
    keep_mistakes: bool,
) -> Report {
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
        group_by: group_by.to_string(),
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
                .by_group
                .entry(group_by.key_of(example))
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
    group_by: GroupBy,
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
    let mut report = evaluate_all(&policy, &examples, group_by, mistakes);
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
    let width = report
        .by_group
        .keys()
        .map(|name| name.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(10, GROUP_NAME_CHARS);
    let _ = writeln!(
        out,
        "{:<width$} {:<10} {:>8} {:>8} {:>8}",
        report.group_by, "label", "total", "blocked", "rate"
    );
    for (group, labels) in &report.by_group {
        let name = shortened(group, GROUP_NAME_CHARS);
        for (label, c) in labels {
            let _ = writeln!(
                out,
                "{:<width$} {:<10} {:>8} {:>8} {:>7.2}%",
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

/// The widest group name the table prints in full.
const GROUP_NAME_CHARS: usize = 64;

/// `name` cut to `max` characters by dropping its middle: the start of a
/// source names the project, its end names the file, and two sources of
/// one project (cyberseceval's English and multilingual injection files)
/// differ only at the end.
fn shortened(name: &str, max: usize) -> String {
    let count = name.chars().count();
    if count <= max {
        return name.to_string();
    }
    let tail = (max - 1) / 2;
    let head = max - 1 - tail;
    let start: String = name.chars().take(head).collect();
    let end: String = name.chars().skip(count - tail).collect();
    format!("{start}…{end}")
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

        let report = evaluate_all(&policy, &examples, GroupBy::Source, true);

        let attack = report.by_label["attack"];
        let benign = report.by_label["benign"];
        assert_eq!((attack.total, attack.flagged), (2, 1));
        assert_eq!((benign.total, benign.flagged), (2, 1));
        assert_eq!(report.by_group["mine"]["benign"].flagged, 1);
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
        assert!(
            evaluate_all(&policy, &examples, GroupBy::Source, false)
                .mistakes
                .is_empty()
        );
    }

    #[test]
    fn groups_lines_by_source_file_or_category_prefix() {
        let policy = policy_of(POLICY);
        let data = write(concat!(
            r#"{"text": "a purple elephant", "label": "attack", "category": "pi:direct:few_shot:Korean"}"#,
            "\n",
            r#"{"text": "a grey elephant", "label": "attack", "category": "pi:direct:few_shot:Thai"}"#,
            "\n",
            r#"{"text": "purple elephant again", "label": "attack", "category": "pi:indirect:overload:Thai", "source": "theirs"}"#,
            "\n",
            r#"{"text": "hello", "label": "benign"}"#,
            "\n",
        ));
        let examples = read_examples(data.path()).unwrap();
        let groups = |by: &str| {
            let report = evaluate_all(&policy, &examples, by.parse().unwrap(), false);
            assert_eq!(report.group_by, by);
            report
                .by_group
                .iter()
                .flat_map(|(group, labels)| {
                    labels
                        .iter()
                        .map(|(label, c)| (group.clone(), label.clone(), c.total, c.flagged))
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
        };
        let row = |g: &str, l: &str, total, flagged| (g.to_string(), l.to_string(), total, flagged);
        let stem = data
            .path()
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();

        assert_eq!(
            groups("category:2"),
            [
                row("(none)", "benign", 1, 0),
                row("pi:direct", "attack", 2, 1),
                row("pi:indirect", "attack", 1, 1),
            ]
        );
        assert_eq!(
            groups("category")[1..],
            [
                row("pi:direct:few_shot:Korean", "attack", 1, 1),
                row("pi:direct:few_shot:Thai", "attack", 1, 0),
                row("pi:indirect:overload:Thai", "attack", 1, 1),
            ]
        );
        assert_eq!(
            groups("source"),
            [
                row(&stem, "attack", 2, 1),
                row(&stem, "benign", 1, 0),
                row("theirs", "attack", 1, 1),
            ]
        );
        let by_file = groups("file");
        assert_eq!(by_file.len(), 2);
        assert!(
            by_file
                .iter()
                .all(|(g, ..)| *g == data.path().display().to_string())
        );
    }

    #[test]
    fn a_bad_grouping_says_what_is_expected() {
        for bad in ["sources", "category:0", "category:x", "file:2"] {
            let err = bad.parse::<GroupBy>().unwrap_err();
            assert!(
                err.contains("expected source, file, category"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn long_group_names_keep_their_start_and_end() {
        let name = "meta-llama/PurpleLlama@4be64c3a2444 CybersecurityBenchmarks/datasets/prompt_injection/prompt_injection_multilingual_machine_translated.json";
        let short = shortened(name, 40);
        assert_eq!(short.chars().count(), 40);
        assert!(short.starts_with("meta-llama/Purple"), "{short}");
        assert!(short.ends_with("_translated.json"), "{short}");
        assert_eq!(shortened("short", 40), "short");
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

        let report = evaluate_all(&policy, &examples, GroupBy::Source, false);

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

        let report = evaluate_all(&policy, &examples, GroupBy::Source, true);

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

        let report = evaluate_all(&policy, &examples, GroupBy::Source, true);

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

        let report = evaluate_all(&policy, &examples, GroupBy::Source, true);

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

        let report = evaluate_all(&policy, &examples, GroupBy::Source, true);

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
