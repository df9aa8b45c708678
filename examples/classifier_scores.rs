//! Raw classifier scores over labelled JSONL files, one TSV line per example:
//! `file:line`, label, score, length in characters. Used to choose a
//! classifier signal's threshold on held-out files (see docs/categories.md,
//! "Learned harmful classifier") without writing one policy per threshold.
//!
//! Run: `cargo run --release --example classifier_scores -- MODEL FILES...`

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::Path;

use palisade::detect::classifier::Model;
use palisade::detect::normalize::normalize;

fn main() {
    let mut args = std::env::args().skip(1);
    let model_path = args
        .next()
        .expect("usage: classifier_scores MODEL FILES...");
    let model = Model::load(Path::new(&model_path)).expect("model loads");
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for file in args {
        let text = std::fs::read_to_string(&file).expect("file readable");
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let v: serde_json::Value = serde_json::from_str(raw).expect("JSON line");
            let body = v["text"].as_str().unwrap_or_default();
            let label = v["label"].as_str().unwrap_or_default();
            let score = model.score(&normalize(body).normalized.text);
            writeln!(
                out,
                "{file}:{}\t{label}\t{score:.4}\t{}",
                i + 1,
                body.chars().count()
            )
            .unwrap();
        }
    }
}
