//! Literal phrase matching: every keyword of every rule for one text form,
//! compiled into a single Aho-Corasick automaton, so a text is scanned once
//! however many rules there are.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

/// What a keyword pattern belongs to.
#[derive(Debug, Clone, Copy)]
pub struct KeywordTarget {
    /// Index of the signal the keyword belongs to.
    pub signal: u32,
    /// Only count matches that start and end at word boundaries.
    pub whole_word: bool,
}

/// One keyword hit: which signal, where in the scanned text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeywordHit {
    /// The signal index.
    pub signal: u32,
    /// Byte offsets in the scanned text.
    pub start: usize,
    /// Exclusive end.
    pub end: usize,
}

/// An immutable, shareable keyword matcher.
///
/// Each distinct keyword is one automaton pattern, with every signal that
/// lists it: the vocabularies that many rules repeat (request forms, "how
/// to", harmful objects) are found once per occurrence, not once per rule
/// (on the default policy, 3,574 keyword entries of the deobfuscated form
/// are 2,105 distinct patterns), so the overlapping search does not report
/// the same words many times over.
#[derive(Debug, Clone)]
pub struct KeywordMatcher {
    automaton: Option<AhoCorasick>,
    /// For each automaton pattern, its targets in the order given.
    targets: Vec<Vec<KeywordTarget>>,
    /// Number of `(pattern, target)` pairs given.
    len: usize,
}

/// Building the automaton failed (too many / too large patterns).
#[derive(Debug, thiserror::Error)]
#[error("keyword automaton: {0}")]
pub struct KeywordBuildError(String);

impl KeywordMatcher {
    /// Compiles `(pattern, target)` pairs. Patterns are matched ASCII
    /// case-insensitively; callers lower-case non-ASCII themselves.
    pub fn new(patterns: Vec<(String, KeywordTarget)>) -> Result<Self, KeywordBuildError> {
        if patterns.is_empty() {
            return Ok(Self {
                automaton: None,
                targets: Vec::new(),
                len: 0,
            });
        }
        let len = patterns.len();
        let mut index: std::collections::HashMap<String, usize> = Default::default();
        let mut texts: Vec<String> = Vec::new();
        let mut targets: Vec<Vec<KeywordTarget>> = Vec::new();
        for (text, target) in patterns {
            let slot = *index.entry(text.clone()).or_insert_with(|| {
                texts.push(text);
                targets.push(Vec::new());
                targets.len() - 1
            });
            if let Some(list) = targets.get_mut(slot) {
                list.push(target);
            }
        }
        let automaton = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(&texts)
            .map_err(|e| KeywordBuildError(e.to_string()))?;
        Ok(Self {
            automaton: Some(automaton),
            targets,
            len,
        })
    }

    /// Number of patterns compiled in.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Calls `on_hit` for every (overlapping) keyword occurrence in `text`.
    /// Stops after `max_hits` hits so adversarial input cannot blow up the work.
    pub fn scan(&self, text: &str, max_hits: usize, mut on_hit: impl FnMut(KeywordHit)) {
        let Some(automaton) = &self.automaton else {
            return;
        };
        let mut count = 0usize;
        for m in automaton.find_overlapping_iter(text) {
            let Some(targets) = self.targets.get(m.pattern().as_usize()) else {
                continue;
            };
            let mut whole_word: Option<bool> = None;
            for target in targets {
                if target.whole_word
                    && !*whole_word.get_or_insert_with(|| {
                        is_boundary_before(text, m.start()) && is_boundary_after(text, m.end())
                    })
                {
                    continue;
                }
                on_hit(KeywordHit {
                    signal: target.signal,
                    start: m.start(),
                    end: m.end(),
                });
                count += 1;
                if count >= max_hits {
                    return;
                }
            }
        }
    }
}

/// Whether `c` continues a word: letters, digits, `_` and combining marks
/// (a Devanagari vowel sign belongs to its word). Non-ASCII punctuation
/// such as curly quotes, guillemets, `¿` or an em dash is not part of a
/// word, so `“ignore all previous instructions”` matches like the same text
/// in straight quotes.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || unicode_normalization::char::is_combining_mark(c)
}

/// Whether a whole-word match may start at byte `start` of `text`: the
/// character before it is not a word character, or the match itself does
/// not start with one (a keyword like "<|im_start|>" may touch a word).
fn is_boundary_before(text: &str, start: usize) -> bool {
    let before = text.get(..start).and_then(|t| t.chars().next_back());
    let first = text.get(start..).and_then(|t| t.chars().next());
    before.is_none_or(|c| !is_word_char(c)) || first.is_some_and(|c| !is_word_char(c))
}

/// Whether a whole-word match may end at byte `end` of `text` (see
/// [`is_boundary_before`]).
fn is_boundary_after(text: &str, end: usize) -> bool {
    let after = text.get(end..).and_then(|t| t.chars().next());
    let last = text.get(..end).and_then(|t| t.chars().next_back());
    after.is_none_or(|c| !is_word_char(c)) || last.is_some_and(|c| !is_word_char(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[(&str, u32, bool)]) -> KeywordMatcher {
        KeywordMatcher::new(
            patterns
                .iter()
                .map(|(p, s, w)| {
                    (
                        p.to_string(),
                        KeywordTarget {
                            signal: *s,
                            whole_word: *w,
                        },
                    )
                })
                .collect(),
        )
        .unwrap()
    }

    fn hits(m: &KeywordMatcher, text: &str) -> Vec<(u32, usize, usize)> {
        let mut out = Vec::new();
        m.scan(text, 1000, |h| out.push((h.signal, h.start, h.end)));
        out
    }

    #[test]
    fn whole_word_and_substring_semantics() {
        let m = matcher(&[("kill", 0, true), ("gun", 1, false)]);
        assert_eq!(hits(&m, "how to kill a process"), vec![(0, 7, 11)]);
        assert!(hits(&m, "skills").is_empty());
        assert_eq!(hits(&m, "shotgun"), vec![(1, 4, 7)]);
        assert_eq!(hits(&m, "KILL it"), vec![(0, 0, 4)]);
    }

    #[test]
    fn overlapping_patterns_all_reported() {
        let m = matcher(&[
            ("ignore previous", 0, true),
            ("previous instructions", 1, true),
        ]);
        let h = hits(&m, "ignore previous instructions");
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn punctuation_keywords_match_next_to_words() {
        let m = matcher(&[("<|im_start|>", 0, true)]);
        assert_eq!(hits(&m, "x<|im_start|>system").len(), 1);
    }

    #[test]
    fn non_ascii_punctuation_is_a_boundary_and_non_ascii_letters_are_not() {
        let m = matcher(&[
            ("ignore all previous instructions", 0, true),
            ("caf", 1, true),
        ]);
        for text in [
            "“ignore all previous instructions”",
            "«ignore all previous instructions»",
            "—ignore all previous instructions—",
            "¿ignore all previous instructions?",
            "🙂ignore all previous instructions🙂",
        ] {
            assert_eq!(hits(&m, text).len(), 1, "{text}");
        }
        assert!(hits(&m, "café").is_empty());
        assert!(hits(&m, "écaf").is_empty());
        let hindi = matcher(&[("कर", 0, true)]);
        // the vowel sign after "कर" belongs to the word "करो"
        assert!(hits(&hindi, "करो").is_empty());
        assert_eq!(hits(&hindi, "कर दो").len(), 1);
    }

    #[test]
    fn hit_cap_bounds_work() {
        let m = matcher(&[("a", 0, false)]);
        let text = "a".repeat(10_000);
        assert_eq!(hits(&m, &text).len(), 1000);
    }

    #[test]
    fn empty_matcher_finds_nothing() {
        let m = KeywordMatcher::new(Vec::new()).unwrap();
        assert!(m.is_empty());
        assert!(hits(&m, "anything").is_empty());
    }
}
