//! Per-example detection time and full decisions over labelled JSONL files.
//!
//! Two uses, both for changing the detectors without changing a decision:
//! * `--dump FILE` writes one line per example (file, line, verdict, every
//!   finding with rule, span, score and decoding chain) so two builds can be
//!   compared with `cmp`;
//! * stderr lists the slowest examples (time, length, file:line), which is
//!   where superlinear cost shows up.
//!
//! Run: `cargo run --release --example detect_times -- [--policy P]
//! [--dump FILE] [--top N] [--warmup FILE] FILES...` (single-threaded, so
//! times are per core).
//!
//! `--warmup FILE` evaluates every line of FILE first, untimed and not
//! dumped: a server compiles most position regexes and the relaxed sets
//! lazily, on the first texts that need them, and a short run without a
//! warm-up measures mostly that one-time compilation (about 40% of the
//! instructions over 300 new prompts, session 18). With a warm-up the
//! figures are those of a server that has been running a while. Only
//! the measured evaluations go through [`measured_evaluate`], so
//! `valgrind --tool=callgrind --toggle-collect='*measured_evaluate*'`
//! counts them alone.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use palisade::engine::{Decision, Segment, evaluate};
use palisade::policy::{self, Direction, Role};

/// The allocator of the `palisade` binary, so times are those it would see.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut policy_path = PathBuf::from("policies/default.yaml");
    let mut dump: Option<PathBuf> = None;
    let mut top = 20usize;
    let mut files = Vec::new();
    let mut warmup: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--warmup" => warmup = Some(args.next().expect("--warmup FILE").into()),
            "--policy" => policy_path = args.next().expect("--policy P").into(),
            "--dump" => dump = Some(args.next().expect("--dump FILE").into()),
            "--top" => top = args.next().expect("--top N").parse().expect("number"),
            _ => files.push(PathBuf::from(a)),
        }
    }
    let policy = policy::load_path(&policy_path).expect("policy");
    if let Some(file) = warmup {
        let text = std::fs::read_to_string(file).expect("read warm-up file");
        for (t, role) in text.lines().filter_map(example_text) {
            let segments = [Segment::new(role, "messages[0].content", &t)];
            evaluate(&policy, Direction::Input, &segments);
        }
    }
    let mut out = dump.map(|p| std::io::BufWriter::new(std::fs::File::create(p).unwrap()));
    let mut times: Vec<(f64, usize, String)> = Vec::new();
    let mut total_bytes = 0usize;
    let all = Instant::now();
    let cpu_start = cpu_seconds();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read");
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (i, raw) in text.lines().enumerate() {
            if raw.trim().is_empty() {
                continue;
            }
            let (t, role) = example_text(raw).expect("json line");
            let t = t.as_str();
            let segments = [Segment::new(role, "messages[0].content", t)];
            let start = Instant::now();
            let decision = measured_evaluate(&policy, &segments);
            let secs = start.elapsed().as_secs_f64();
            total_bytes += t.len();
            if secs > 0.2 {
                eprintln!("slow: {:.3} s {} B {name}:{}", secs, t.len(), i + 1);
            }
            times.push((secs, t.len(), format!("{name}:{}", i + 1)));
            if let Some(out) = out.as_mut() {
                let findings: Vec<String> = decision
                    .findings
                    .iter()
                    .map(|f| {
                        format!(
                            "{}@{}..{}={:08x}{}{}",
                            f.rule,
                            f.span.start,
                            f.span.end,
                            f.score.to_bits(),
                            f.decoded
                                .as_deref()
                                .map(|d| format!("<{d}>"))
                                .unwrap_or_default(),
                            if f.redact_spans.len() > 1 {
                                format!("#{}", f.redact_spans.len())
                            } else {
                                String::new()
                            }
                        )
                    })
                    .collect();
                writeln!(
                    out,
                    "{name}:{} {} {}",
                    i + 1,
                    decision.verdict.as_str(),
                    findings.join(" ")
                )
                .unwrap();
            }
        }
    }
    let wall = all.elapsed().as_secs_f64();
    let cpu = cpu_seconds().zip(cpu_start).map(|(end, start)| end - start);
    times.sort_by(|a, b| b.0.total_cmp(&a.0));
    eprintln!(
        "{} examples, {:.2} MB in {:.2} s ({:.2} MB/s one core){}",
        times.len(),
        total_bytes as f64 / 1e6,
        wall,
        total_bytes as f64 / 1e6 / wall,
        cpu.map(|c| format!(", {c:.2} s CPU")).unwrap_or_default()
    );
    for (secs, len, at) in times.iter().take(top) {
        eprintln!(
            "{:>10.3} ms {:>8} B {:>8.3} MB/s  {at}",
            secs * 1e3,
            len,
            *len as f64 / 1e6 / secs
        );
    }
}

/// The `text` of one JSONL line (empty if it has none) and the role it is
/// read as (`role`, as `palisade eval` reads it; a user message when
/// absent), so rules for tool results are timed on the lines written for
/// them; `None` for a blank line.
fn example_text(raw: &str) -> Option<(String, Role)> {
    if raw.trim().is_empty() {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(raw).expect("json line");
    let role = serde_json::from_value(v["role"].clone()).unwrap_or(Role::User);
    Some((v["text"].as_str().unwrap_or("").to_owned(), role))
}

/// The evaluation that is timed (and that callgrind's `--toggle-collect`
/// can select by name): never inlined, so it keeps its symbol.
#[inline(never)]
fn measured_evaluate(policy: &policy::CompiledPolicy, segments: &[Segment<'_>]) -> Decision {
    evaluate(policy, Direction::Input, segments)
}

/// User plus system CPU seconds of this process so far (Linux
/// `/proc/self/stat`, 100 ticks a second), `None` elsewhere: on a shared
/// machine the CPU time of the detection loop varies less than its wall
/// time.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the whole line (utime, stime) are 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}
