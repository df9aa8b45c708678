//! Relaxed patterns for the "which patterns can match" pass.
//!
//! Why: a lazy DFA cannot evaluate Unicode word boundaries (`\b`, `\B`,
//! `\b{start}`, ... without `(?-u)`) and gives up on the first non-ASCII byte
//! of the text; the set search then falls back to the PikeVM, which runs
//! every pattern of the set in lock-step. With the hundreds of patterns of
//! the default policy that turned one accented letter or curly quote into a
//! one-second scan of a 4 KB prompt.
//!
//! Deleting a look-around assertion can only make a regex match more: every
//! match of the original is a match of the relaxed form at the same span.
//! So a set built from relaxed patterns reports a superset of the patterns
//! that match, and running the exact regex of each reported pattern (which
//! the matcher does anyway, for positions) removes the extra ones. Results
//! are identical; the set pass stays a DFA scan whatever the text.

use regex_syntax::hir::{
    Class, ClassBytes, ClassBytesRange, ClassUnicode, ClassUnicodeRange, Hir, HirKind, Look,
};

/// Whether `hir` contains a Unicode word-boundary assertion, i.e. whether a
/// lazy DFA searching for it gives up on non-ASCII text.
pub fn has_unicode_word_boundary(hir: &Hir) -> bool {
    hir.properties().look_set().contains_word_unicode()
}

/// Rebuilds `hir` with each leaf (empty, literal, class, assertion) replaced
/// by `leaf` of it; repetitions, groups, concatenations and alternations
/// keep their shape. The two rewrites here ([`restricted_to_ascii`],
/// [`without_unicode_word_boundaries`]) differ only in their leaves.
fn map_leaves(hir: Hir, leaf: &impl Fn(HirKind) -> Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Repetition(mut rep) => {
            rep.sub = Box::new(map_leaves(*rep.sub, leaf));
            Hir::repetition(rep)
        }
        HirKind::Capture(mut cap) => {
            cap.sub = Box::new(map_leaves(*cap.sub, leaf));
            Hir::capture(cap)
        }
        HirKind::Concat(subs) => {
            Hir::concat(subs.into_iter().map(|h| map_leaves(h, leaf)).collect())
        }
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(|h| map_leaves(h, leaf)).collect())
        }
        other => leaf(other),
    }
}

/// The leaf itself, unchanged (for the cases a [`map_leaves`] rewrite leaves
/// alone).
fn unchanged_leaf(kind: HirKind) -> Hir {
    match kind {
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Look(look) => Hir::look(look),
        // Not leaves ([`map_leaves`] never passes them); rebuilt as they are.
        HirKind::Repetition(rep) => Hir::repetition(rep),
        HirKind::Capture(cap) => Hir::capture(cap),
        HirKind::Concat(subs) => Hir::concat(subs),
        HirKind::Alternation(subs) => Hir::alternation(subs),
    }
}

/// `hir` with every Unicode word-boundary assertion replaced by the empty
/// regex. ASCII word boundaries and other assertions are kept.
pub fn without_unicode_word_boundaries(hir: Hir) -> Hir {
    map_leaves(hir, &|kind| match kind {
        HirKind::Look(look) if is_unicode_word_look(look) => Hir::empty(),
        other => unchanged_leaf(other),
    })
}

/// `hir` as it behaves on ASCII text: every class cut to its ASCII part,
/// every literal with a non-ASCII byte replaced by a regex that never
/// matches, every Unicode word-boundary assertion replaced by its ASCII one.
///
/// Why: on ASCII text the result matches exactly where `hir` does (the
/// Unicode and ASCII word characters agree on ASCII, and nothing else can
/// match a non-ASCII character or byte there), but its NFA is far smaller.
/// A case-insensitive `s` is `[Ss\u{17F}]`, `[^.]` and `\w` are hundreds of
/// UTF-8 byte sequences; the set searches build their lazy-DFA states from
/// those NFA states on every new text, so the sets searched on ASCII text are
/// built from these (the text forms are ASCII for most traffic).
pub fn restricted_to_ascii(hir: Hir) -> Hir {
    map_leaves(hir, &|kind| match kind {
        HirKind::Literal(lit) if !lit.0.is_ascii() => Hir::fail(),
        HirKind::Class(Class::Unicode(mut class)) => {
            class.intersect(&ClassUnicode::new([ClassUnicodeRange::new('\0', '\x7F')]));
            Hir::class(Class::Unicode(class))
        }
        HirKind::Class(Class::Bytes(mut class)) => {
            class.intersect(&ClassBytes::new([ClassBytesRange::new(0, 0x7F)]));
            Hir::class(Class::Bytes(class))
        }
        HirKind::Look(look) => Hir::look(ascii_word_look(look)),
        other => unchanged_leaf(other),
    })
}

/// The ASCII counterpart of a Unicode word-boundary assertion; other
/// assertions unchanged.
fn ascii_word_look(look: Look) -> Look {
    match look {
        Look::WordUnicode => Look::WordAscii,
        Look::WordUnicodeNegate => Look::WordAsciiNegate,
        Look::WordStartUnicode => Look::WordStartAscii,
        Look::WordEndUnicode => Look::WordEndAscii,
        Look::WordStartHalfUnicode => Look::WordStartHalfAscii,
        Look::WordEndHalfUnicode => Look::WordEndHalfAscii,
        other => other,
    }
}

fn is_unicode_word_look(look: Look) -> bool {
    matches!(
        look,
        Look::WordUnicode
            | Look::WordUnicodeNegate
            | Look::WordStartUnicode
            | Look::WordEndUnicode
            | Look::WordStartHalfUnicode
            | Look::WordEndHalfUnicode
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_syntax::ParserBuilder;

    fn parse(pattern: &str, case_insensitive: bool) -> Hir {
        ParserBuilder::new()
            .case_insensitive(case_insensitive)
            .build()
            .parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
    }

    #[test]
    fn removes_only_unicode_word_boundaries() {
        let relaxed = without_unicode_word_boundaries(parse(r"\bfoo\b", false));
        assert!(!has_unicode_word_boundary(&relaxed));
        assert_eq!(relaxed.to_string(), "(?:foo)");
        let ascii = parse(r"(?-u:\b)foo", false);
        assert!(!has_unicode_word_boundary(&ascii));
        assert_eq!(without_unicode_word_boundaries(ascii.clone()), ascii);
        let anchored = parse(r"\Afoo$", false);
        assert_eq!(without_unicode_word_boundaries(anchored.clone()), anchored);
    }

    #[test]
    fn ascii_restriction_matches_exactly_on_ascii_text() {
        let patterns = [
            r"\bsex\b",
            r"(?:ignore|forget)\s+\bprevious\b[^.]{0,20}rules",
            r"\w+ing\b{end}",
            r"\B\d+\b",
            r"(?:убить|kill) \w+",
            r"caf[eé] [a-z]{2,}",
            r"(?-u:\w)+ (?-u:\b)stop",
            r"[^a-z ]{2}",
        ];
        let texts = [
            "Essex and sex, then ignore   previous ... rules? ignore previous  safety rules",
            "singing x42 kill Bob, cafe latte, STOP!",
            "KILL the process; Kelvin k and long s: s",
            "",
        ];
        for ci in [false, true] {
            for pattern in patterns {
                let exact = regex::RegexBuilder::new(pattern)
                    .case_insensitive(ci)
                    .build()
                    .unwrap_or_else(|e| panic!("{pattern}: {e}"));
                let ascii = restricted_to_ascii(parse(pattern, ci));
                let ascii = regex::bytes::Regex::new(&ascii.to_string())
                    .unwrap_or_else(|e| panic!("{pattern} -> {ascii}: {e}"));
                for text in texts {
                    let a: Vec<_> = exact.find_iter(text).map(|m| m.range()).collect();
                    let b: Vec<_> = ascii
                        .find_iter(text.as_bytes())
                        .map(|m| m.range())
                        .collect();
                    assert_eq!(a, b, "{pattern} (ci {ci}) on {text:?}");
                }
            }
        }
    }

    #[test]
    fn ascii_restriction_drops_what_only_non_ascii_can_match() {
        let hir = restricted_to_ascii(parse(r"\bcafé\b|\w", true));
        assert!(!has_unicode_word_boundary(&hir));
        let re = regex::bytes::Regex::new(&hir.to_string()).expect("compiles");
        assert!(!re.is_match("é".as_bytes()));
        assert!(re.is_match(b"a"));
    }

    #[test]
    fn relaxed_pattern_matches_a_superset_at_the_same_spans() {
        let cases = [
            (r"\bsex\b", "Essex and sex"),
            (r"\bубить\b", "как убить — процесс"),
            (r"\B\d+\b{end}", "x42 café"),
            (r"(?:ignore|forget)\s+\bprevious\b", "ignore   previous"),
        ];
        for ci in [false, true] {
            for (pattern, text) in cases {
                let exact = regex::RegexBuilder::new(pattern)
                    .case_insensitive(ci)
                    .build()
                    .unwrap_or_else(|e| panic!("{pattern}: {e}"));
                let relaxed_src = without_unicode_word_boundaries(parse(pattern, ci)).to_string();
                let relaxed = regex::Regex::new(&relaxed_src)
                    .unwrap_or_else(|e| panic!("{relaxed_src}: {e}"));
                let found = exact.find_iter(text).count();
                assert!(found > 0, "{pattern} should match {text:?}");
                for m in exact.find_iter(text) {
                    assert!(
                        relaxed.is_match_at(text, m.start())
                            && relaxed.find_at(text, m.start()).is_some(),
                        "{pattern} matched {:?} but {relaxed_src} did not",
                        m.as_str()
                    );
                }
            }
        }
    }
}
