//! SSE parser: never panics, and is split-invariant: the same bytes fed in
//! one piece or in two arbitrary pieces give the same events (or both fail).
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::proxy::sse::{Event, Parser, SseError};

/// Feeds `pieces` in order, then finishes; the events, or the first error.
fn run(pieces: &[&[u8]], max: usize) -> Result<Vec<Event>, SseError> {
    let mut parser = Parser::new(max);
    let mut events = Vec::new();
    for piece in pieces {
        events.extend(parser.push(piece)?);
    }
    events.extend(parser.finish()?);
    Ok(events)
}

fuzz_target!(|data: &[u8]| {
    // First two bytes: where to split, and the event size limit.
    let [split, limit, rest @ ..] = data else {
        return;
    };
    let at = usize::from(*split) * rest.len() / 255;
    let max = if limit & 1 == 0 {
        1 << 20
    } else {
        usize::from(*limit) + 1
    };
    let whole = run(&[rest], max);
    let halves = run(&[&rest[..at], &rest[at..]], max);
    let bytewise: Vec<&[u8]> = rest.chunks(1).collect();
    let single = run(&bytewise, max);
    match (&whole, &halves, &single) {
        (Ok(a), Ok(b), Ok(c)) => {
            assert_eq!(a, b, "split at {at} changed the events");
            assert_eq!(a, c, "byte-by-byte feeding changed the events");
        }
        (Err(_), Err(_), Err(_)) => {}
        _ => panic!(
            "split changed the outcome: whole {whole:?}, at {at} {halves:?}, bytewise {single:?}"
        ),
    }
    // What the proxy re-encodes must parse back to the same event.
    if let Ok(events) = whole {
        for e in events {
            let bytes = e.encode(e.data.as_deref());
            let back = run(&[&bytes], usize::MAX).expect("encoded event parses");
            assert_eq!(back, vec![e.clone()], "re-encoding changed {e:?}");
        }
    }
});
