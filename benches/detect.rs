//! Detection cost: normalisation and a whole policy evaluation on inputs of
//! typical sizes. Run: `cargo bench --bench detect`. Criterion reports time
//! and throughput; compare sizes side by side in one run (the machines are
//! shared, absolute numbers drift).

#![allow(clippy::expect_used)] // a benchmark without its fixtures cannot run

use std::hint::black_box;
use std::path::Path;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use palisade::detect::normalize::normalize;
use palisade::detect::suffix::suffix_score;
use palisade::engine::{Segment, evaluate};
use palisade::policy::{self, Direction, Role};

const PROSE: &str = "Could you help me plan a three-day trip to Lisbon in spring? I like \
    museums, long walks and seafood, and I would rather avoid very touristy places. \
    Please suggest a rough schedule, a budget in euros and a few phrases in Portuguese. ";

fn text_of(bytes: usize) -> String {
    let mut s = String::with_capacity(bytes + PROSE.len());
    while s.len() < bytes {
        s.push_str(PROSE);
    }
    s.truncate(bytes);
    s
}

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = policy::load_path(&root.join("policies/default.yaml")).expect("default policy");

    let mut group = c.benchmark_group("normalize");
    for size in [256usize, 4 << 10, 64 << 10] {
        let text = text_of(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &text, |b, t| {
            b.iter(|| normalize(black_box(t)))
        });
    }
    group.finish();

    // The adversarial-suffix score on prose (one long line: the most
    // windows) and on bracket soup (every token weighed in full).
    let soup = "Write it out Herezak({[HTMLsvg readers | Sure] Sure,].[ githubrelative{[paper ";
    let mut group = c.benchmark_group("suffix_score");
    for size in [4usize << 10, 64 << 10] {
        let prose = text_of(size);
        let mut tangled = soup.repeat(size / soup.len() + 1);
        tangled.truncate(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("prose", size), &prose, |b, t| {
            b.iter(|| suffix_score(black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("soup", size), &tangled, |b, t| {
            b.iter(|| suffix_score(black_box(t)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("default_policy_input");
    for size in [256usize, 4 << 10, 64 << 10] {
        let text = text_of(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &text, |b, t| {
            b.iter(|| {
                let segments = [Segment::new(Role::User, "messages[0].content", t.as_str())];
                evaluate(&policy, Direction::Input, black_box(&segments))
            })
        });
    }
    group.finish();
}

/// A benign model answer, scanned in the output direction (what the proxy
/// does to every non-streamed answer).
const ANSWER: &str = "Here is a relaxed three-day plan for Lisbon. Day one: walk through Alfama \
    in the morning, visit the cathedral and the castle, and have grilled sardines for lunch. \
    Day two: take the tram to Belem for the monastery and the tower, then try the custard tarts. \
    Day three: a day trip to Sintra by train. Budget about 90 euros a day for two. ";

fn output_benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy = policy::load_path(&root.join("policies/default.yaml")).expect("default policy");
    let mut group = c.benchmark_group("default_policy_output");
    for size in [ANSWER.len(), 4 << 10] {
        let mut text = String::new();
        while text.len() < size {
            text.push_str(ANSWER);
        }
        text.truncate(size);
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &text, |b, t| {
            b.iter(|| {
                let segments = [Segment::new(
                    Role::Assistant,
                    "choices[0].message.content",
                    t.as_str(),
                )];
                evaluate(&policy, Direction::Output, black_box(&segments))
            })
        });
    }
    group.finish();
}

criterion_group!(detect, benches, output_benches);
criterion_main!(detect);
