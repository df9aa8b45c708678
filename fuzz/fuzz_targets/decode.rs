//! Decoders: never panic, stay inside their limits, and report spans that
//! lie inside the input on char boundaries.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::detect::decode::{DecodeLimits, decode_payloads};

fuzz_target!(|data: &[u8]| {
    // The first byte picks the limits; the rest is the text.
    let Some((&knobs, rest)) = data.split_first() else {
        return;
    };
    let input = String::from_utf8_lossy(rest);
    let limits = DecodeLimits {
        max_depth: knobs % 5,
        max_output_bytes: if knobs & 0x80 != 0 { 64 * 1024 } else { 256 },
        min_encoded_len: if knobs & 0x40 != 0 { 16 } else { 4 },
        max_candidates: if knobs & 0x20 != 0 { 32 } else { 4 },
    };
    let found = decode_payloads(&input, &limits);
    if limits.max_depth == 0 {
        assert!(found.is_empty(), "decoding is off at depth 0");
    }
    let mut total = 0;
    for d in &found {
        assert!(!d.chain.is_empty());
        assert!(
            d.chain.len() <= usize::from(limits.max_depth),
            "chain {:?} deeper than {}",
            d.chain,
            limits.max_depth
        );
        assert!(
            d.span.start <= d.span.end && d.span.end <= input.len(),
            "span {:?} outside {} bytes",
            d.span,
            input.len()
        );
        assert!(input.is_char_boundary(d.span.start) && input.is_char_boundary(d.span.end));
        total += d.text.len();
    }
    // Every kept decoding is paid for out of one output budget.
    assert!(
        total <= limits.max_output_bytes,
        "{total} decoded bytes over the {} budget",
        limits.max_output_bytes
    );
});
