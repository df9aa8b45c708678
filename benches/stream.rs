//! Streaming moderation cost as the answer doubles from 1 KB to 1 MB, in
//! token-sized chunks. Linear cost shows as constant throughput across
//! sizes. `sse_parse_only` is the floor (parsing and re-encoding nothing).
//! Run: `cargo bench --bench stream`.

#![allow(clippy::expect_used)] // a benchmark without its fixtures cannot run

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use palisade::policy;
use palisade::proxy::handlers::Endpoint;
use palisade::proxy::sse::Parser;
use palisade::proxy::stream::StreamGuard;

/// An SSE answer of about `bytes` of content in 4-byte tokens.
fn sse_answer(bytes: usize) -> Vec<Bytes> {
    let words = [
        "The ", "quic", "k br", "own ", "fox ", "jump", "s ov", "er t", "he l", "azy ", "dog.",
    ];
    let mut events = Vec::new();
    let mut n = 0;
    let mut i = 0;
    while n < bytes {
        let w = words[i % words.len()];
        i += 1;
        n += w.len();
        events.push(Bytes::from(format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{w}\"}},\"finish_reason\":null}}]}}\n\n"
        )));
    }
    events.push(Bytes::from_static(
        b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
    ));
    events
}

fn benches(c: &mut Criterion) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy =
        Arc::new(policy::load_path(&root.join("policies/default.yaml")).expect("default policy"));
    let mut group = c.benchmark_group("stream_answer");
    group.sample_size(10);
    for kb in [1usize, 4, 16, 64, 256, 1024] {
        let wire = sse_answer(kb << 10);
        group.throughput(Throughput::Bytes((kb << 10) as u64));
        group.bench_with_input(BenchmarkId::new("window_guard", kb), &wire, |b, wire| {
            b.iter(|| {
                let mut parser = Parser::new(1 << 20);
                let mut guard =
                    StreamGuard::new(Arc::clone(&policy), Endpoint::Chat, false, String::new());
                let mut out = 0usize;
                for piece in wire {
                    for event in parser.push(piece).expect("valid stream") {
                        out += guard.on_event(event).iter().map(Bytes::len).sum::<usize>();
                    }
                }
                black_box(out)
            })
        });
        group.bench_with_input(BenchmarkId::new("sse_parse_only", kb), &wire, |b, wire| {
            b.iter(|| {
                let mut parser = Parser::new(1 << 20);
                let mut out = 0usize;
                for piece in wire {
                    for event in parser.push(piece).expect("valid stream") {
                        out += event.encode(event.data.as_deref()).len();
                    }
                }
                black_box(out)
            })
        });
    }
    group.finish();
}

criterion_group!(stream, benches);
criterion_main!(stream);
