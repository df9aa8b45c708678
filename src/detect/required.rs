//! Required literals: for a regex, a small set of strings one of which every
//! match must contain.
//!
//! Why: most policy regexes need a word that ordinary prose rarely holds
//! ("instructions", "jailbreak", "<|im_start|>"). One Aho-Corasick pass over
//! the text finds which of those words occur, and only the regexes whose
//! required word occurred are run at all; the rest never cost a regex scan.
//! The set search over every pattern (see [`super::patterns`]) was most of
//! the detection time on ordinary prose, and most of its patterns are gated
//! this way.
//!
//! The analysis walks the parsed regex (the same `Hir` the regex engine
//! compiles), so it sees case folding and classes exactly as the engine
//! does. Strings are kept with ASCII letters lower-cased; they must be
//! searched ASCII-case-insensitively, which can only find more, never less.
//! Anything the analysis cannot bound (a `.`, a large class, an optional
//! part) simply contributes no requirement, so the result is always safe:
//! `None` means "no useful requirement", never "cannot match".

use std::collections::BTreeSet;

use regex_syntax::hir::{Class, Hir, HirKind};

/// A set of byte strings, ASCII letters lower-cased.
type Strings = BTreeSet<Vec<u8>>;

/// Most distinct characters a class may have and still be spelled out
/// (`[Kk\u{212A}]` under case folding, `[-_ ]`); larger classes (`\w`, `.`)
/// are unknown text.
const MAX_CLASS_CHARS: usize = 8;

/// Most strings a concatenation may spell out; beyond it the product is
/// dropped (products of alternations grow fast).
const MAX_STRINGS: usize = 256;

/// Most strings an alternation may collect: a long word list
/// (`kill|killing|murder|...`) is still one cheap Aho-Corasick search.
const MAX_ALTERNATIVES: usize = 1024;

/// Shortest required literal worth gating on: shorter ones ("a", "is")
/// occur in almost every text, so gating on them would run the regex every
/// time anyway.
pub const MIN_REQUIRED_LEN: usize = 4;

/// What the analysis knows about one regex node.
#[derive(Debug, Clone, Default)]
struct Info {
    /// Every string the node can match, if there are few of them.
    exact: Option<Strings>,
    /// Strings of which every match of the node contains at least one.
    required: Option<Strings>,
}

/// Strings (ASCII lower-cased) of which every match of `hir` contains at
/// least one as a substring, or `None` if no selective small set was found.
///
/// Selective means each string is at least [`MIN_REQUIRED_LEN`] bytes and
/// not only common words, with one exception: a regex that can only match
/// one of its strings (a word list between word boundaries, such as
/// `\b(?:instead|rather|just)\b`) is returned whatever its words. Such a
/// regex, run on its own, is a literal search (its engine's prefilter
/// finds the words), which costs less than keeping it in a set search
/// (measured: 14% less detection time on warm ASCII prose, no change on
/// new text).
pub fn required_literals(hir: &Hir) -> Option<Vec<Vec<u8>>> {
    let info = analyse(hir);
    if let Some(exact) = &info.exact
        && !exact.is_empty()
        && exact.iter().all(|s| !s.is_empty())
    {
        return Some(minimal(exact.clone()));
    }
    let best = best_of([info.exact, info.required])?;
    (quality(&best) >= MIN_REQUIRED_LEN).then(|| minimal(best))
}

/// `set` without the strings that contain another of its strings: finding
/// "stop" already covers "stop now".
fn minimal(set: Strings) -> Vec<Vec<u8>> {
    let mut by_len: Vec<Vec<u8>> = set.into_iter().collect();
    by_len.sort_by_key(Vec::len);
    let mut out: Vec<Vec<u8>> = Vec::new();
    for s in by_len {
        if !out.iter().any(|kept| contains(&s, kept)) {
            out.push(s);
        }
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn analyse(hir: &Hir) -> Info {
    match hir.kind() {
        HirKind::Empty | HirKind::Look(_) => exact([Vec::new()].into()),
        HirKind::Literal(lit) => exact([lower(&lit.0)].into()),
        HirKind::Class(class) => class_strings(class).map_or_else(Info::default, exact),
        HirKind::Capture(cap) => analyse(&cap.sub),
        HirKind::Repetition(rep) => {
            let sub = analyse(&rep.sub);
            if rep.min == 0 {
                // `x?` is "" or x; anything longer is unbounded.
                let exact = match (rep.max, sub.exact) {
                    (Some(1), Some(mut e)) => {
                        e.insert(Vec::new());
                        Some(e)
                    }
                    _ => None,
                };
                return Info {
                    exact,
                    required: None,
                };
            }
            // At least one copy of the sub-expression is in every match.
            let exact = match (rep.max, &sub.exact) {
                (Some(1), Some(e)) if rep.min == 1 => Some(e.clone()),
                _ => None,
            };
            Info {
                exact,
                required: best_of([sub.exact, sub.required]),
            }
        }
        HirKind::Concat(subs) => concat(subs),
        HirKind::Alternation(subs) => alternation(subs),
    }
}

fn exact(strings: Strings) -> Info {
    Info {
        exact: Some(strings),
        required: None,
    }
}

/// A concatenation requires what any of its parts requires, and the
/// product of any run of consecutive parts whose strings are all known.
fn concat(subs: &[Hir]) -> Info {
    let infos: Vec<Info> = subs.iter().map(analyse).collect();
    let mut candidates: Vec<Strings> = Vec::new();
    let mut run: Option<Strings> = None;
    let mut whole: Option<Strings> = Some([Vec::new()].into());
    for info in &infos {
        whole = match (whole, &info.exact) {
            (Some(w), Some(e)) => product(&w, e),
            _ => None,
        };
        match &info.exact {
            Some(e) => {
                run = match run.take() {
                    Some(r) => match product(&r, e) {
                        Some(p) => Some(p),
                        None => {
                            candidates.push(r);
                            Some(e.clone())
                        }
                    },
                    None => Some(e.clone()),
                };
            }
            None => {
                candidates.extend(run.take());
            }
        }
        candidates.extend(info.required.clone());
    }
    candidates.extend(run);
    Info {
        exact: whole,
        required: best_of(candidates.into_iter().map(Some)),
    }
}

/// An alternation requires one of what each branch requires; if any branch
/// requires nothing, neither does the alternation.
fn alternation(subs: &[Hir]) -> Info {
    let infos: Vec<Info> = subs.iter().map(analyse).collect();
    let exact = infos.iter().try_fold(Strings::new(), |mut acc, info| {
        acc.extend(info.exact.clone()?);
        (acc.len() <= MAX_ALTERNATIVES).then_some(acc)
    });
    let required = infos.into_iter().try_fold(Strings::new(), |mut acc, info| {
        acc.extend(best_of([info.exact, info.required])?);
        (acc.len() <= MAX_ALTERNATIVES).then_some(acc)
    });
    Info { exact, required }
}

/// Every concatenation of a string of `a` with one of `b`, if not too many.
fn product(a: &Strings, b: &Strings) -> Option<Strings> {
    if a.len().saturating_mul(b.len()) > MAX_STRINGS {
        return None;
    }
    let mut out = Strings::new();
    for x in a {
        for y in b {
            let mut s = x.clone();
            s.extend_from_slice(y);
            out.insert(s);
        }
    }
    Some(out)
}

/// The characters (or bytes) of a small class, UTF-8 encoded.
fn class_strings(class: &Class) -> Option<Strings> {
    let mut out = Strings::new();
    match class {
        Class::Unicode(c) => {
            for range in c.ranges() {
                let (lo, hi) = (u32::from(range.start()), u32::from(range.end()));
                if hi - lo >= MAX_CLASS_CHARS as u32 {
                    return None;
                }
                for cp in lo..=hi {
                    let ch = fold_to_ascii(char::from_u32(cp)?);
                    out.insert(lower(ch.encode_utf8(&mut [0; 4]).as_bytes()));
                }
            }
        }
        Class::Bytes(c) => {
            for range in c.ranges() {
                if range.end() - range.start() >= MAX_CLASS_CHARS as u8 {
                    return None;
                }
                for b in range.start()..=range.end() {
                    out.insert(lower(&[b]));
                }
            }
        }
    }
    (out.len() <= MAX_CLASS_CHARS).then_some(out)
}

fn lower(bytes: &[u8]) -> Vec<u8> {
    bytes.to_ascii_lowercase()
}

/// The two non-ASCII characters that Unicode simple case folding makes
/// equal to an ASCII letter (so a case-insensitive `s` or `k` also matches
/// them), with that letter. Literals spell them as the ASCII letter, which
/// keeps a word like "skills" one literal instead of eight; a text that
/// holds either character is searched with it replaced by
/// [`fold_text_to_ascii`].
const ASCII_CASE_VARIANTS: [(char, char); 2] = [('\u{17F}', 's'), ('\u{212A}', 'k')];

fn fold_to_ascii(ch: char) -> char {
    ASCII_CASE_VARIANTS
        .iter()
        .find(|(variant, _)| *variant == ch)
        .map_or(ch, |(_, ascii)| *ascii)
}

/// `text` with the long s and the Kelvin sign replaced by their
/// ASCII letters, or `None` if it has none (the usual case). Search this
/// for the literals of [`required_literals`].
pub fn fold_text_to_ascii(text: &str) -> Option<String> {
    if !text.contains(['\u{17F}', '\u{212A}']) {
        return None;
    }
    Some(text.chars().map(fold_to_ascii).collect())
}

/// Words so frequent in ordinary prompts that gating on them would run the
/// regex on almost every text: a literal made only of these (and
/// punctuation or spaces) counts as one byte long. Only speed depends on
/// this list, never a result.
const COMMON_WORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "all",
    "also",
    "an",
    "and",
    "any",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "but",
    "by",
    "can",
    "code",
    "could",
    "create",
    "data",
    "do",
    "does",
    "each",
    "even",
    "every",
    "example",
    "explain",
    "find",
    "first",
    "following",
    "for",
    "from",
    "get",
    "give",
    "good",
    "has",
    "have",
    "help",
    "here",
    "how",
    "i",
    "if",
    "in",
    "information",
    "into",
    "is",
    "it",
    "its",
    "just",
    "know",
    "like",
    "list",
    "make",
    "many",
    "me",
    "more",
    "most",
    "my",
    "need",
    "new",
    "no",
    "not",
    "now",
    "of",
    "on",
    "one",
    "only",
    "or",
    "other",
    "our",
    "out",
    "over",
    "people",
    "please",
    "provide",
    "put",
    "run",
    "should",
    "show",
    "so",
    "some",
    "such",
    "tell",
    "than",
    "that",
    "the",
    "their",
    "them",
    "then",
    "there",
    "these",
    "they",
    "this",
    "those",
    "time",
    "to",
    "up",
    "use",
    "using",
    "very",
    "want",
    "was",
    "way",
    "we",
    "well",
    "were",
    "what",
    "when",
    "which",
    "will",
    "with",
    "without",
    "would",
    "write",
    "you",
    "your",
];

/// How selective one literal is: its length, or 1 if it is only common
/// words, spaces or fewer than [`MIN_OTHER_SCRIPT_CHARS`] letters of
/// another script.
///
/// Words are runs of ASCII letters and digits or of non-ASCII bytes (the
/// letters of other scripts). A literal without an ASCII word is judged by
/// what else it holds: other-script letters (`пароль`, `忽略`) or markup
/// (`<!--`, `[/inst]`) are as rare in ordinary prompts as an uncommon
/// English word, while two Cyrillic letters occur in most Russian words.
fn literal_quality(literal: &[u8]) -> usize {
    let is_word_byte = |b: &u8| b.is_ascii_alphanumeric() || !b.is_ascii();
    let words: Vec<&[u8]> = literal
        .split(|b| !is_word_byte(b))
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return literal.iter().filter(|b| !b.is_ascii_whitespace()).count();
    }
    let rare_ascii_word = words
        .iter()
        .any(|w| w.is_ascii() && !COMMON_WORDS.iter().any(|c| c.as_bytes() == *w));
    let other_script_chars: usize = words
        .iter()
        .filter(|w| !w.is_ascii())
        .map(|w| std::str::from_utf8(w).map_or(0, |w| w.chars().count()))
        .sum();
    if rare_ascii_word || other_script_chars >= MIN_OTHER_SCRIPT_CHARS {
        literal.len()
    } else {
        1
    }
}

/// Fewest letters of another script (Cyrillic, CJK, Arabic...) that make a
/// literal without an uncommon ASCII word worth gating on.
const MIN_OTHER_SCRIPT_CHARS: usize = 3;

/// How selective a requirement is: its least selective string's
/// [`literal_quality`] (a set holding "" requires nothing).
fn quality(set: &Strings) -> usize {
    set.iter().map(|s| literal_quality(s)).min().unwrap_or(0)
}

/// The most selective of the candidate sets: longest shortest string, then
/// fewest strings.
fn best_of(candidates: impl IntoIterator<Item = Option<Strings>>) -> Option<Strings> {
    candidates
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .max_by(|a, b| {
            quality(a)
                .cmp(&quality(b))
                .then_with(|| b.len().cmp(&a.len()))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_automata::util::syntax;

    fn req(pattern: &str) -> Option<Vec<String>> {
        let hir = syntax::parse_with(pattern, &syntax::Config::new().case_insensitive(true))
            .expect("pattern parses");
        required_literals(&hir).map(|v| {
            v.into_iter()
                .map(|s| String::from_utf8(s).expect("utf-8"))
                .collect()
        })
    }

    #[test]
    fn the_longest_word_of_a_sequence_is_required() {
        assert_eq!(
            req(r"\bignore\s+(?:all\s+)?previous\s+instructions\b"),
            Some(vec!["instructions".into()])
        );
    }

    #[test]
    fn alternations_require_one_of_their_branches() {
        assert_eq!(
            req(r"\b(?:jailbreak|dan mode)\b"),
            Some(vec!["dan mode".into(), "jailbreak".into()])
        );
        // One branch without a long enough word: no requirement.
        assert_eq!(req(r"\b(?:jailbreak|do) \w+"), None);
        assert_eq!(req(r"jailbreak|\w+"), None);
    }

    #[test]
    fn small_classes_and_optional_letters_are_spelled_out() {
        assert_eq!(
            req(r"colou?r[-_ ]code"),
            Some(vec![
                "color code".into(),
                "color-code".into(),
                "color_code".into(),
                "colour code".into(),
                "colour-code".into(),
                "colour_code".into(),
            ])
        );
    }

    #[test]
    fn unicode_case_variants_are_spelled_in_ascii_and_texts_folded() {
        // Case-insensitive `k` also matches the Kelvin sign: the literal is
        // "kill", and a text with a Kelvin sign is searched folded.
        assert_eq!(req(r"kill"), Some(vec!["kill".into()]));
        assert_eq!(req(r"\u{212A}ill"), Some(vec!["kill".into()]));
        assert_eq!(
            fold_text_to_ascii("\u{212A}ill \u{17F}elf").as_deref(),
            Some("kill self")
        );
        assert_eq!(fold_text_to_ascii("plain café"), None);
    }

    #[test]
    fn other_scripts_and_markup_are_worth_gating_on() {
        // Letters of another script are no common English word.
        assert!(req(r"пароль\s+\w+").is_some());
        assert!(req(r"忽略之前\w*").is_some());
        assert!(req(r"<!--\s*\w+").is_some());
        // Two Cyrillic letters occur in most Russian words; spaces alone
        // occur everywhere.
        assert_eq!(req(r"ии\s+\w+"), None);
        assert_eq!(req(r"\w+    \w+"), None);
    }

    #[test]
    fn common_words_are_not_worth_gating_on() {
        assert_eq!(req(r"\bwith the \w+\b"), None);
        // Unless the regex is nothing but its words.
        assert_eq!(
            req(r"\b(?:with|the)\b"),
            Some(vec!["the".into(), "with".into()])
        );
        // The common verbs alone are useless, but spelled out with the rare
        // objects they are the most selective requirement.
        let got = req(r"\b(?:make|write) (?:a |the )?(?:bomb|grenade)\b").unwrap();
        assert!(
            got.iter()
                .all(|s| s.ends_with("bomb") || s.ends_with("grenade")),
            "{got:?}"
        );
        assert_eq!(
            req(r"\b(?:make|write) (?:a |the )?(?:bomb|grenade|\w+)\b"),
            None
        );
    }

    #[test]
    fn unbounded_or_optional_text_requires_nothing() {
        assert_eq!(req(r".*"), None);
        assert_eq!(req(r"(?:secret)?"), None);
        assert_eq!(req(r"[a-z]{8,}"), None);
        assert_eq!(req(r"\bsk-[a-z0-9]{20,}"), None, "too short to gate on");
    }

    #[test]
    fn repetitions_require_their_body() {
        assert_eq!(req(r"(?:password){2,}"), Some(vec!["password".into()]));
    }

    /// The guarantee: every match of the regex contains one of the strings.
    #[test]
    fn every_match_contains_a_required_string() {
        let cases = [
            (
                r"\b(?:send|forward)\s+(?:the|all)\s+(?:emails?|messages?)\b",
                "please Send  ALL Messages now",
            ),
            (
                r"disregard(?:\s+\w+){0,3}\s+rules",
                "Disregard all of the RULES",
            ),
            (r"(?:step|stage)\s*\d+\s*:\s*acquire", "Stage 2: Acquire"),
            (r"ſecret|secret", "ſecret"),
        ];
        for (pattern, text) in cases {
            let re = regex::RegexBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .unwrap();
            let m = re.find(text).expect("test text matches");
            let matched = fold_text_to_ascii(m.as_str())
                .unwrap_or_else(|| m.as_str().to_string())
                .to_ascii_lowercase();
            let strings = req(pattern).expect("has a requirement");
            assert!(
                strings.iter().any(|s| matched.contains(s.as_str())),
                "{pattern}: {matched:?} contains none of {strings:?}"
            );
        }
    }
}
