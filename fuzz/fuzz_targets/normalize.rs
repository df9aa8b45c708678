//! Normaliser: never panics, and every offset the views map back lands inside
//! the original text, on a char boundary, as an ordered range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::detect::normalize::{View, normalize};

fn check_range(original: &str, view: &View, start: usize, end: usize) {
    let r = view.original_range(start, end);
    assert!(
        r.start <= r.end && r.end <= original.len(),
        "range {start}..{end} of {:?} mapped to {r:?} outside the original ({} bytes)",
        view.text,
        original.len()
    );
    assert!(
        original.is_char_boundary(r.start) && original.is_char_boundary(r.end),
        "range {start}..{end} of {:?} mapped to {r:?}, not on char boundaries of {original:?}",
        view.text
    );
}

fn check_view(original: &str, view: &View, data: &[u8]) {
    let len = view.text.len();
    check_range(original, view, 0, len);
    let full = view.full_original_range();
    assert!(full.end <= original.len());
    // Every single-char range and every prefix/suffix.
    let bounds: Vec<usize> = (0..=len)
        .filter(|&i| view.text.is_char_boundary(i))
        .collect();
    for pair in bounds.windows(2) {
        check_range(original, view, pair[0], pair[1]);
        check_range(original, view, 0, pair[1]);
        check_range(original, view, pair[0], len);
    }
    // Arbitrary (possibly reversed, out-of-range, mid-char) pairs from the input bytes.
    for pair in data.chunks_exact(2).take(64) {
        let a = usize::from(pair[0]) * (len + 2) / 255;
        let b = usize::from(pair[1]) * (len + 2) / 255;
        check_range(original, view, a, b);
    }
}

fuzz_target!(|data: &[u8]| {
    let original = String::from_utf8_lossy(data);
    let n = normalize(&original);
    check_view(&original, &n.normalized, data);
    check_view(&original, &n.deobfuscated, data);
    // Normalising is a function: the same input gives the same views.
    assert_eq!(normalize(&original), n);
});
