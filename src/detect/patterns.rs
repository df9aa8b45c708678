//! Regular-expression matching: all regexes of one text form in a `RegexSet`
//! (one pass says which matched), then only the matching ones are run again
//! for positions.

use std::sync::OnceLock;

use regex::{Regex, RegexBuilder, RegexSet, RegexSetBuilder};

/// A regex hit: which signal, where in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternHit {
    /// The signal index.
    pub signal: u32,
    /// Byte offset of the match start.
    pub start: usize,
    /// Exclusive end.
    pub end: usize,
}

/// Immutable set of regexes with their signal ids.
///
/// The set is compiled up front; each regex is compiled for positions only
/// the first time the set reports it matched. Compiled regexes take most of a
/// policy's memory (Unicode classes make large automata), and most patterns
/// never match ordinary traffic, so this halves the resident size of a
/// policy without changing a result.
#[derive(Debug, Clone)]
pub struct PatternMatcher {
    set: Option<RegexSet>,
    patterns: Vec<String>,
    case_insensitive: bool,
    /// Lazily compiled `patterns` (`None` if one failed, which the set makes
    /// practically impossible: it compiled the same pattern).
    regexes: Vec<OnceLock<Option<Regex>>>,
    signals: Vec<u32>,
}

/// Size limit for one compiled regex; generous but bounded.
const REGEX_SIZE_LIMIT: usize = 16 * 1024 * 1024;

/// Size limit for the set of all regexes of one text form. The set holds
/// every pattern of the policy (hundreds in the default one), so it gets more
/// room than any single regex; each pattern is still held to
/// [`REGEX_SIZE_LIMIT`] by [`compile_one`].
const SET_SIZE_LIMIT: usize = 64 * 1024 * 1024;

/// Compiles one regex the way the matcher will, so a policy loader can report
/// the failing pattern and its rule before building the whole set.
pub fn compile_one(pattern: &str, case_insensitive: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
}

impl PatternMatcher {
    /// Builds the matcher from `(pattern, signal)` pairs; every pattern must
    /// already have compiled with [`compile_one`].
    pub fn new(patterns: Vec<(String, u32)>, case_insensitive: bool) -> Result<Self, regex::Error> {
        if patterns.is_empty() {
            return Ok(Self {
                set: None,
                patterns: Vec::new(),
                case_insensitive,
                regexes: Vec::new(),
                signals: Vec::new(),
            });
        }
        let set = RegexSetBuilder::new(patterns.iter().map(|(p, _)| p.as_str()))
            .case_insensitive(case_insensitive)
            .size_limit(SET_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()?;
        let (patterns, signals): (Vec<String>, Vec<u32>) = patterns.into_iter().unzip();
        Ok(Self {
            set: Some(set),
            regexes: patterns.iter().map(|_| OnceLock::new()).collect(),
            patterns,
            case_insensitive,
            signals,
        })
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    fn regex(&self, idx: usize) -> Option<&Regex> {
        let pattern = self.patterns.get(idx)?;
        self.regexes
            .get(idx)?
            .get_or_init(|| compile_one(pattern, self.case_insensitive).ok())
            .as_ref()
    }

    /// Calls `on_hit` for matches of every regex that matches `text`, at most
    /// `max_hits_per_regex` each.
    pub fn scan(&self, text: &str, max_hits_per_regex: usize, mut on_hit: impl FnMut(PatternHit)) {
        let Some(set) = &self.set else { return };
        for idx in set.matches(text).iter() {
            let (Some(regex), Some(signal)) = (self.regex(idx), self.signals.get(idx)) else {
                continue;
            };
            for m in regex.find_iter(text).take(max_hits_per_regex) {
                on_hit(PatternHit {
                    signal: *signal,
                    start: m.start(),
                    end: m.end(),
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matching_regexes_report_positions() {
        let m = PatternMatcher::new(
            vec![(r"\bsk-[a-z0-9]{8,}".into(), 3), (r"never".into(), 4)],
            false,
        )
        .unwrap();
        let mut hits = Vec::new();
        m.scan("key sk-abcdef123 and sk-zzzzzzzzz", 10, |h| hits.push(h));
        assert_eq!(hits.len(), 2);
        assert!(hits.iter().all(|h| h.signal == 3));
        assert_eq!(hits[0].start, 4);
    }

    #[test]
    fn invalid_regex_is_an_error() {
        assert!(compile_one("(unclosed", false).is_err());
        assert!(PatternMatcher::new(vec![("(x".into(), 0)], false).is_err());
    }

    #[test]
    fn case_insensitive_option() {
        let m = PatternMatcher::new(vec![("Ignore".into(), 0)], true).unwrap();
        let mut n = 0;
        m.scan("ignore", 10, |_| n += 1);
        assert_eq!(n, 1);
    }
}
