//! `palisade train`: fits the linear classifier on labelled JSONL and writes
//! the model file a policy references. Deterministic for the same inputs
//! and seed. Lines whose `license` field is AGPL are skipped: their texts
//! may be used to measure, not to build a shipped model.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use serde::Deserialize;

use crate::detect::classifier::{FeatureConfig, Model, TrainOptions};
use crate::detect::normalize::normalize;

#[derive(Debug, Deserialize)]
struct Line {
    text: String,
    label: String,
    #[serde(default)]
    license: Option<String>,
}

/// Settings of one training run (`palisade train`'s options).
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The positive label (`attack` or `harmful`).
    #[arg(long = "label", value_name = "LABEL")]
    pub positive: String,
    /// Model file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// JSONL files (AGPL-licensed lines are skipped).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Passes over the data.
    #[arg(long, default_value_t = 6)]
    pub epochs: u32,
    /// Random seed (same seed and files give the same model).
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// AdaGrad base learning rate.
    #[arg(long, default_value_t = 0.2)]
    pub learning_rate: f32,
    /// L2 penalty on the weights each example touches.
    #[arg(long, default_value_t = 1e-5)]
    pub l2: f32,
    /// Loss weight of positive lines (default: benign/positive count, balanced classes).
    #[arg(long)]
    pub positive_weight: Option<f32>,
    /// Weight every line by 1/sqrt(lines of its class in its file), so the largest files
    /// do not set the style of their class.
    #[arg(long)]
    pub balance_files: bool,
    /// Character n-gram range `MIN-MAX` (`0-0` disables character n-grams).
    #[arg(long, default_value = "3-5", value_parser = parse_range)]
    pub char_ngrams: (u8, u8),
    /// Word n-gram order: 0 none, 1 unigrams, 2 unigrams and bigrams.
    #[arg(long, default_value_t = 2)]
    pub word_ngrams: u8,
    /// Binary feature presence instead of sqrt(count).
    #[arg(long)]
    pub binary: bool,
    /// Split runs of Chinese, Japanese, Thai, Lao, Khmer and Myanmar text into
    /// overlapping character bigrams instead of taking each run as one word.
    #[arg(long)]
    pub segment_unspaced: bool,
    /// Also train on lines with this label as negatives, next to `benign` (repeatable;
    /// e.g. `harmful` for the injection model, so plain requests of any topic count as
    /// not-an-injection).
    #[arg(long = "negative-label", value_name = "LABEL")]
    pub negative_labels: Vec<String>,
}

/// Parses `MIN-MAX` into a character n-gram range (clap reports the error).
fn parse_range(s: &str) -> Result<(u8, u8), String> {
    let range = s.split_once('-').and_then(|(a, b)| {
        let (a, b): (u8, u8) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        (a <= b).then_some((a, b))
    });
    range.ok_or_else(|| format!("wants MIN-MAX, got `{s}`"))
}

fn read(
    path: &Path,
    positive: &str,
    negatives: &[String],
    out: &mut Vec<(String, bool, usize)>,
    file: usize,
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
        } else if line.label == "benign" || negatives.contains(&line.label) {
            false
        } else {
            continue;
        };
        out.push((normalize(&line.text).normalized.text, label, file));
    }
    Ok(())
}

/// Trains and writes the model.
pub fn run(args: TrainArgs) -> ExitCode {
    let mut examples = Vec::new();
    let mut skipped = 0usize;
    let (char_min, char_max) = args.char_ngrams;
    for (index, file) in args.files.iter().enumerate() {
        if let Err(message) = read(
            file,
            &args.positive,
            &args.negative_labels,
            &mut examples,
            index,
            &mut skipped,
        ) {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    }
    let positives = examples.iter().filter(|(_, p, _)| *p).count();
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
        learning_rate: args.learning_rate,
        l2: args.l2,
        positive_weight: args
            .positive_weight
            .unwrap_or(negatives as f32 / positives as f32),
        ..TrainOptions::default()
    };
    let features = FeatureConfig {
        char_ngram_min: char_min,
        char_ngram_max: char_max,
        word_ngram_max: args.word_ngrams,
        sublinear_tf: !args.binary,
        segment_unspaced: args.segment_unspaced,
        ..FeatureConfig::default()
    };
    // Per-line weights: 1 unless --balance-files; then a (file, class) group
    // of n lines carries a total weight proportional to sqrt(n) instead of n,
    // so the largest files no longer set the style of their class, scaled so
    // each class keeps its line count (the class balance still applies).
    // A BTreeMap, not a HashMap: the float sums below must not depend on the
    // randomised hash order, or the model would differ from run to run.
    let weights: Vec<f32> = if args.balance_files {
        let mut groups: std::collections::BTreeMap<(usize, bool), usize> =
            std::collections::BTreeMap::new();
        for (_, p, f) in &examples {
            *groups.entry((*f, *p)).or_default() += 1;
        }
        let root_sum = |p: bool| -> f32 {
            groups
                .iter()
                .filter(|((_, q), _)| *q == p)
                .map(|(_, &n)| (n as f32).sqrt())
                .sum()
        };
        let (sp, sn) = (root_sum(true), root_sum(false));
        examples
            .iter()
            .map(|(_, p, f)| {
                let (lines, sum) = if *p {
                    (positives as f32, sp)
                } else {
                    (negatives as f32, sn)
                };
                lines / (sum * (groups[&(*f, *p)] as f32).sqrt())
            })
            .collect()
    } else {
        vec![1.0; examples.len()]
    };
    let borrowed: Vec<(&str, bool, f32)> = examples
        .iter()
        .zip(&weights)
        .map(|((t, p, _), w)| (t.as_str(), *p, *w))
        .collect();
    let started = std::time::Instant::now();
    let model = Model::train_weighted(&borrowed, &options, &features);
    if let Err(e) = model.save(&args.out) {
        eprintln!("error: cannot write {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    eprintln!(
        "trained on {positives} {} + {negatives} negative lines ({skipped} AGPL lines skipped) in {:.1} s; wrote {}",
        args.positive,
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn char_ngram_ranges_are_min_dash_max() {
        assert_eq!(parse_range("3-5"), Ok((3, 5)));
        assert_eq!(parse_range("0-0"), Ok((0, 0)));
        for bad in ["5-3", "3", "a-b", "3-300"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }
}
