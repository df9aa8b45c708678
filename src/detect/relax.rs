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

use regex_syntax::hir::{Hir, HirKind, Look};

/// Whether `hir` contains a Unicode word-boundary assertion, i.e. whether a
/// lazy DFA searching for it gives up on non-ASCII text.
pub fn has_unicode_word_boundary(hir: &Hir) -> bool {
    hir.properties().look_set().contains_word_unicode()
}

/// `hir` with every Unicode word-boundary assertion replaced by the empty
/// regex. ASCII word boundaries and other assertions are kept.
pub fn without_unicode_word_boundaries(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Look(look) if is_unicode_word_look(look) => Hir::empty(),
        HirKind::Look(look) => Hir::look(look),
        HirKind::Empty => Hir::empty(),
        HirKind::Literal(lit) => Hir::literal(lit.0),
        HirKind::Class(class) => Hir::class(class),
        HirKind::Repetition(mut rep) => {
            rep.sub = Box::new(without_unicode_word_boundaries(*rep.sub));
            Hir::repetition(rep)
        }
        HirKind::Capture(mut cap) => {
            cap.sub = Box::new(without_unicode_word_boundaries(*cap.sub));
            Hir::capture(cap)
        }
        HirKind::Concat(subs) => Hir::concat(
            subs.into_iter()
                .map(without_unicode_word_boundaries)
                .collect(),
        ),
        HirKind::Alternation(subs) => Hir::alternation(
            subs.into_iter()
                .map(without_unicode_word_boundaries)
                .collect(),
        ),
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
