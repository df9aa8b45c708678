//! `palisade train`: fits the linear classifier on labelled JSONL and writes
//! the model file a policy references. Deterministic for the same inputs
//! and seed. Lines whose `license` field is AGPL are skipped: their texts
//! may be used to measure, not to build a shipped model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;

use crate::detect::classifier::{Model, TrainOptions};
use crate::detect::normalize::normalize;

#[derive(Debug, Deserialize)]
struct Line {
    text: String,
    label: String,
    #[serde(default)]
    license: Option<String>,
}

/// Settings of one training run.
#[derive(Debug)]
pub struct TrainArgs {
    /// Label of the positive class (`attack` or `harmful`).
    pub positive: String,
    /// Where to write the model.
    pub out: PathBuf,
    /// Training files.
    pub files: Vec<PathBuf>,
    /// Passes over the data.
    pub epochs: u32,
    /// Random seed.
    pub seed: u64,
}

fn read(
    path: &Path,
    positive: &str,
    out: &mut Vec<(String, bool)>,
    skipped: &mut usize,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    for (i, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        let line: Line =
            serde_json::from_str(raw).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1))?;
        if line
            .license
            .as_deref()
            .is_some_and(|l| l.to_ascii_uppercase().contains("AGPL"))
        {
            *skipped += 1;
            continue;
        }
        let label = if line.label == positive {
            true
        } else if line.label == "benign" {
            false
        } else {
            continue;
        };
        out.push((normalize(&line.text).normalized.text, label));
    }
    Ok(())
}

/// Trains and writes the model.
pub fn run(args: TrainArgs) -> ExitCode {
    let mut examples = Vec::new();
    let mut skipped = 0usize;
    for file in &args.files {
        if let Err(message) = read(file, &args.positive, &mut examples, &mut skipped) {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    }
    let positives = examples.iter().filter(|(_, p)| *p).count();
    let negatives = examples.len() - positives;
    if positives == 0 || negatives == 0 {
        eprintln!(
            "error: need both `{}` and `benign` lines (got {positives} and {negatives})",
            args.positive
        );
        return ExitCode::from(2);
    }
    let options = TrainOptions {
        epochs: args.epochs,
        seed: args.seed,
        positive_weight: negatives as f32 / positives as f32,
        ..TrainOptions::default()
    };
    let borrowed: Vec<(&str, bool)> = examples.iter().map(|(t, p)| (t.as_str(), *p)).collect();
    let started = std::time::Instant::now();
    let model = Model::train(&borrowed, &options);
    if let Err(e) = model.save(&args.out) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    eprintln!(
        "trained on {positives} {} + {negatives} benign lines ({skipped} AGPL lines skipped) in {:.1} s; wrote {}",
        args.positive,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    ExitCode::SUCCESS
}
