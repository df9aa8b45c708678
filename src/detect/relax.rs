//! Rewritten patterns for the "which patterns can match" pass: ASCII
//! restrictions ([`restricted_to_ascii`], for the exact position regexes on
//! ASCII text), ASCII-mapped forms ([`mapped_to_ascii`], for the sets, on
//! ASCII text and on the mapped copy of Latin-script text) and relaxed forms
//! ([`without_unicode_word_boundaries`], for texts in other scripts).
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
//!
//! Relaxed sets keep the full Unicode classes (`[^.]`, `\w` are hundreds of
//! UTF-8 byte sequences), so on new text they build two to three times the
//! lazy-DFA states of ASCII sets. Most non-ASCII prompts are Latin-script
//! prose with a curly quote, a dash, an accent or an emoji: those are read
//! one character to one ASCII placeholder byte, and the mapped forms of the
//! patterns, searched on that copy, report a superset in the same way.

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

/// `hir` as it behaves on texts whose non-ASCII characters are none of them
/// word characters: every Unicode word-boundary assertion replaced by its
/// ASCII one, every class that gets smaller without its non-ASCII word
/// characters cut to the rest, every literal holding a non-ASCII word
/// character replaced by a regex that never matches.
///
/// Why: on such a text (English with a curly quote, a dash or an emoji)
/// the result matches exactly where `hir` does. Both boundaries ask
/// whether the characters on each side are word characters, and they
/// disagree only beside a non-ASCII word character; classes and literals
/// lose only characters the text does not hold. A lazy DFA can evaluate
/// ASCII boundaries on any text, so the exact position regexes stay DFA
/// scans there instead of running the PikeVM; and a Unicode `\w` (hundreds
/// of UTF-8 byte sequences) becomes ASCII `\w`, so the regex compiles and
/// builds its lazy-DFA states several times faster. Classes that would
/// grow in ranges (a negated `[^.]` loses the scattered non-ASCII letters
/// and keeps everything else) are left whole.
pub fn for_ascii_word_texts(hir: Hir) -> Hir {
    let non_ascii_words = non_ascii_word_class();
    map_leaves(hir, &|kind| match kind {
        HirKind::Literal(lit) if holds_non_ascii_word_char(&lit.0) => Hir::fail(),
        HirKind::Class(Class::Unicode(class)) => {
            let mut pruned = class.clone();
            pruned.difference(non_ascii_words);
            if worth_pruning(&class, &pruned) {
                Hir::class(Class::Unicode(pruned))
            } else {
                Hir::class(Class::Unicode(class))
            }
        }
        HirKind::Look(look) => Hir::look(ascii_word_look(look)),
        other => unchanged_leaf(other),
    })
}

/// Whether [`for_ascii_word_texts`] takes `class` down to `pruned`: when
/// nothing is left (a letter no such text holds) or many ranges go (a
/// `\w`); not for the odd case-folding letter (`(?i)k` also holds the
/// Kelvin sign), which would make most patterns differ from their exact
/// form, and each would be compiled a second time for nothing.
fn worth_pruning(class: &ClassUnicode, pruned: &ClassUnicode) -> bool {
    const MANY_RANGES: usize = 16;
    pruned.ranges().is_empty() || pruned.ranges().len() + MANY_RANGES <= class.ranges().len()
}

/// The word characters (Unicode `\w`) beyond ASCII, built once.
fn non_ascii_word_class() -> &'static ClassUnicode {
    static CLASS: std::sync::OnceLock<ClassUnicode> = std::sync::OnceLock::new();
    CLASS.get_or_init(|| {
        let mut words = match regex_syntax::parse(r"\w").map(Hir::into_kind) {
            Ok(HirKind::Class(Class::Unicode(class))) => class,
            _ => ClassUnicode::empty(),
        };
        words.difference(&ClassUnicode::new([ClassUnicodeRange::new('\0', '\x7F')]));
        words
    })
}

/// Whether UTF-8 `bytes` hold a non-ASCII word character (invalid UTF-8,
/// which only byte-mode literals hold, counts as not).
fn holds_non_ascii_word_char(bytes: &[u8]) -> bool {
    !bytes.is_ascii()
        && std::str::from_utf8(bytes).is_ok_and(|text| {
            text.chars()
                .any(|c| !c.is_ascii() && regex_syntax::is_word_character(c))
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

/// Shortest bounded repetition [`with_open_gaps`] opens: `{0,N}` with a
/// smaller `N` costs a lazy DFA few states, and opening it would only make
/// the set propose its pattern more often.
pub const OPEN_GAP_MIN: u32 = 8;

/// `hir` with every bounded repetition of at least [`OPEN_GAP_MIN`] (`[^.]{0,40}`,
/// `.{0,200}`, `(?:\w+\W+){0,12}`) made unbounded (`[^.]*`).
///
/// Why: a lazy DFA cannot count. For `A[^.]{0,40}B` each DFA state records how
/// far back every occurrence of `A` still in reach was, so on new text
/// nearly every byte after a common word builds a new state: building those
/// states was the largest part of the detection time on new prompts
/// (`docs/performance.md`, session 27). `A[^.]*B` needs a handful of states.
/// Every string a bounded repetition matches the unbounded one matches too,
/// so the result matches wherever `hir` does (a superset, at the same spans
/// and more): fit for the "can this pattern match" searches only, whose
/// proposals the exact regexes confirm.
pub fn with_open_gaps(hir: Hir) -> Hir {
    match hir.into_kind() {
        HirKind::Repetition(mut rep) => {
            rep.sub = Box::new(with_open_gaps(*rep.sub));
            if rep.max.is_some_and(|max| max >= OPEN_GAP_MIN) {
                rep.max = None;
            }
            Hir::repetition(rep)
        }
        HirKind::Capture(mut cap) => {
            cap.sub = Box::new(with_open_gaps(*cap.sub));
            Hir::capture(cap)
        }
        HirKind::Concat(subs) => Hir::concat(subs.into_iter().map(with_open_gaps).collect()),
        HirKind::Alternation(subs) => {
            Hir::alternation(subs.into_iter().map(with_open_gaps).collect())
        }
        other => unchanged_leaf(other),
    }
}

/// What an accented Latin letter (or another non-ASCII word character the
/// mapping keeps, see [`mapped_char`]) becomes in a mapped text: an ASCII
/// word character, so ASCII word boundaries fall where Unicode ones did,
/// and one that is rare in prose.
pub const MAPPED_WORD: u8 = b'_';

/// What a non-ASCII character that is not a word character (curly quotes,
/// dashes, no-break spaces, emoji) becomes in a mapped text: an ASCII
/// control character, not a word character, that ordinary text never holds.
pub const MAPPED_OTHER: u8 = 0x1F;

/// The non-ASCII word characters a mapped text may hold, all read as
/// [`MAPPED_WORD`]: Latin letters with diacritics and the marks, joiners
/// and variation selectors that ride on letters and emoji. Word characters
/// of other scripts (Cyrillic, Greek, CJK, fullwidth and mathematical
/// letters) are left out: mapped to one placeholder, every word of such a
/// text would look like every non-Latin word of the policy, and the set
/// search would propose most of those patterns; those texts keep the
/// relaxed sets.
const MAPPED_WORD_RANGES: [(char, char); 10] = [
    ('\u{AA}', '\u{AA}'),
    ('\u{B5}', '\u{B5}'),
    ('\u{BA}', '\u{BA}'),
    ('\u{C0}', '\u{2AF}'),
    ('\u{300}', '\u{36F}'),
    ('\u{1E00}', '\u{1EFF}'),
    ('\u{200C}', '\u{200D}'),
    ('\u{20D0}', '\u{20FF}'),
    ('\u{A720}', '\u{A7FF}'),
    ('\u{FE00}', '\u{FE0F}'),
];

/// The ASCII byte non-ASCII character `c` is read as in a mapped text, or
/// `None` if a text holding `c` cannot be mapped (a word character of a
/// script outside [`MAPPED_WORD_RANGES`]).
fn mapped_char(c: char) -> Option<u8> {
    match regex_syntax::try_is_word_character(c) {
        Ok(false) => Some(MAPPED_OTHER),
        Ok(true)
            if MAPPED_WORD_RANGES
                .iter()
                .any(|(a, b)| (*a..=*b).contains(&c)) =>
        {
            Some(MAPPED_WORD)
        }
        _ => None,
    }
}

/// `text` with every non-ASCII character replaced by its placeholder byte
/// ([`MAPPED_WORD`] or [`MAPPED_OTHER`]), written into `out`; `false` (and
/// `out` unspecified) if `text` holds a character that cannot be mapped.
///
/// Why: the patterns' [`mapped_to_ascii`] forms, searched on this text,
/// propose every pattern that can match `text` (and a few more), with
/// automata over ASCII bytes only. On English prose with a curly quote,
/// a dash or an emoji, the relaxed sets (full Unicode classes) cost two to
/// three times as much per search on new text (session 18,
/// docs/performance.md). The set search only says which patterns may
/// match; positions come from the exact regexes on the original text, so
/// the byte offsets of the mapped text are never used.
pub fn write_mapped_text(text: &str, out: &mut String) -> bool {
    out.clear();
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else if let Some(b) = mapped_char(c) {
            out.push(char::from(b));
        } else {
            return false;
        }
    }
    true
}

/// `hir` as it behaves on mapped texts ([`write_mapped_text`]), or `None`
/// if it has a byte class or byte literal beyond ASCII (`(?-u:...)`), which
/// the mapping cannot follow.
///
/// Every leaf becomes what the mapped text holds where the original text
/// held a character the leaf matches: ASCII characters stay, a class gains
/// [`MAPPED_WORD`] if it holds a mapped word character and [`MAPPED_OTHER`]
/// if it holds a non-ASCII non-word character, a literal's non-ASCII
/// characters become their placeholders (a literal with a character no
/// mapped text holds never matches), and Unicode word boundaries become
/// ASCII ones (the placeholders keep word and non-word apart). Characters
/// map one to one, so wherever `hir` matches a text its mapped form matches
/// the mapped text: a superset, exact on ASCII text except where a mapped
/// class or literal meets a real `_`.
pub fn mapped_to_ascii(hir: Hir) -> Option<Hir> {
    let mappable = std::cell::Cell::new(true);
    let mapped = map_leaves(hir, &|kind| match kind {
        HirKind::Literal(lit) if !lit.0.is_ascii() => match std::str::from_utf8(&lit.0) {
            Ok(text) => mapped_literal(text),
            Err(_) => {
                mappable.set(false);
                Hir::fail()
            }
        },
        HirKind::Class(Class::Unicode(class)) => Hir::class(Class::Unicode(mapped_class(&class))),
        HirKind::Class(Class::Bytes(class)) => {
            if class.ranges().iter().any(|r| r.end() > 0x7F) {
                mappable.set(false);
            }
            Hir::class(Class::Bytes(class))
        }
        HirKind::Look(look) => Hir::look(ascii_word_look(look)),
        other => unchanged_leaf(other),
    });
    mappable.get().then_some(mapped)
}

/// A literal's mapped form; [`Hir::fail`] if one of its characters cannot
/// occur in a mapped text.
fn mapped_literal(text: &str) -> Hir {
    let mut bytes = Vec::with_capacity(text.len());
    for c in text.chars() {
        match c.is_ascii().then_some(c as u8).or_else(|| mapped_char(c)) {
            Some(b) => bytes.push(b),
            None => return Hir::fail(),
        }
    }
    Hir::literal(bytes)
}

/// A class's mapped form: its ASCII part plus the placeholders of the
/// non-ASCII characters it holds that a mapped text can hold.
fn mapped_class(class: &ClassUnicode) -> ClassUnicode {
    let (words, others) = placeholder_classes();
    let mut out = class.clone();
    out.intersect(&ClassUnicode::new([ClassUnicodeRange::new('\0', '\x7F')]));
    for (holds, byte) in [(words, MAPPED_WORD), (others, MAPPED_OTHER)] {
        let mut common = class.clone();
        common.intersect(holds);
        if !common.ranges().is_empty() {
            let c = char::from(byte);
            out.push(ClassUnicodeRange::new(c, c));
        }
    }
    out
}

/// The non-ASCII characters read as [`MAPPED_WORD`] and those read as
/// [`MAPPED_OTHER`], as classes (built once: the word class comes from the
/// same Unicode tables as [`regex_syntax::try_is_word_character`]).
fn placeholder_classes() -> &'static (ClassUnicode, ClassUnicode) {
    static CLASSES: std::sync::OnceLock<(ClassUnicode, ClassUnicode)> = std::sync::OnceLock::new();
    CLASSES.get_or_init(|| {
        let word = match regex_syntax::Parser::new().parse(r"\w").map(Hir::into_kind) {
            Ok(HirKind::Class(Class::Unicode(class))) => class,
            // Without the Unicode tables no character is a word character
            // to `try_is_word_character` either, and no text maps.
            _ => ClassUnicode::empty(),
        };
        let non_ascii = ClassUnicode::new([ClassUnicodeRange::new('\u{80}', char::MAX)]);
        let mut words = ClassUnicode::new(
            MAPPED_WORD_RANGES
                .iter()
                .map(|(a, b)| ClassUnicodeRange::new(*a, *b)),
        );
        words.intersect(&word);
        let mut others = word;
        others.negate();
        others.intersect(&non_ascii);
        (words, others)
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

    /// `pattern` as the regex crate compiles it: the reference every
    /// rewrite is compared with.
    fn exact_regex(pattern: &str, case_insensitive: bool) -> regex::Regex {
        regex::RegexBuilder::new(pattern)
            .case_insensitive(case_insensitive)
            .build()
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
        assert_rewrite_keeps_spans(&patterns, &texts, restricted_to_ascii);
    }

    /// Asserts that `rewrite` of each pattern (case-sensitive and not)
    /// finds the exact regex's spans on each text.
    fn assert_rewrite_keeps_spans(patterns: &[&str], texts: &[&str], rewrite: fn(Hir) -> Hir) {
        for ci in [false, true] {
            for pattern in patterns {
                let exact = exact_regex(pattern, ci);
                let rewritten = rewrite(parse(pattern, ci));
                let rewritten = regex::bytes::Regex::new(&rewritten.to_string())
                    .unwrap_or_else(|e| panic!("{pattern} -> {rewritten}: {e}"));
                for text in texts {
                    let a: Vec<_> = exact.find_iter(text).map(|m| m.range()).collect();
                    let b: Vec<_> = rewritten
                        .find_iter(text.as_bytes())
                        .map(|m| m.range())
                        .collect();
                    assert_eq!(a, b, "{pattern} (ci {ci}) on {text:?}");
                }
            }
        }
    }

    /// Texts whose non-ASCII characters are none of them word characters
    /// (quotes, dashes, arrows, emoji): the rewrite for them gives the
    /// exact regex's spans there, Unicode `\w`, `\W`, `[^.]`, `.` and
    /// non-ASCII literals included.
    #[test]
    fn ascii_word_rewrite_matches_exactly_where_no_word_character_is_non_ascii() {
        let patterns = [
            r"\bdon\W?t\b",
            r"\w+ing\b{end}",
            r"(?:straße|über|street)\W+\w{2,}",
            r"[^.]{0,20}\bkey\b",
            r"\bsecret\b.{0,8}?\b(?:key|codes?)\b",
            r"caf[eé]\w*",
            r"[\w\s]{3,}\u{1F600}",
            r"\B\d+\b|\bsk\b",
        ];
        let texts = [
            "don\u{2019}t \u{2014} singing \u{201C}over\u{201D} street \u{2192} names \u{1F600}",
            "the secret\u{2014}key \u{2026} street\u{2026}view \u{00AB}key\u{00BB}",
            "cafe1 x42 sk\u{00A0}SK dont\u{2019}t ringing\u{2013}bells",
            "",
        ];
        for text in texts {
            assert!(
                !text
                    .chars()
                    .any(|c| !c.is_ascii() && regex_syntax::is_word_character(c)),
                "{text:?} is not a text the rewrite is for"
            );
        }
        for ci in [false, true] {
            for pattern in patterns {
                let rewritten = for_ascii_word_texts(parse(pattern, ci));
                assert!(!has_unicode_word_boundary(&rewritten), "{pattern}");
            }
        }
        assert_rewrite_keeps_spans(&patterns, &texts, for_ascii_word_texts);
    }

    /// What the rewrite cuts: `\w` to ASCII, literals no such text holds;
    /// what it keeps: a negated class and the odd case-folding letter.
    #[test]
    fn ascii_word_rewrite_cuts_word_classes_and_keeps_negated_ones() {
        let cut = for_ascii_word_texts(parse(r"\w", false));
        assert_eq!(cut, parse(r"[0-9A-Z_a-z]", false));
        let fails = for_ascii_word_texts(parse(r"über", false));
        assert!(
            !regex::Regex::new(&fails.to_string())
                .expect("compiles")
                .is_match("über uber")
        );
        let negated = parse(r"[^.]", false);
        assert_eq!(for_ascii_word_texts(negated.clone()), negated);
        let kelvin = parse(r"k", true);
        assert_eq!(for_ascii_word_texts(kelvin.clone()), kelvin);
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
    fn mapped_text_has_one_ascii_byte_per_character_of_latin_script_text() {
        let mut out = String::new();
        assert!(write_mapped_text(
            "Café \u{2014} \u{201C}ok\u{201D} \u{1F44D}\u{FE0F}",
            &mut out
        ));
        assert_eq!(out, "Caf_ \x1F \x1Fok\x1F \x1F_");
        assert!(write_mapped_text("plain", &mut out));
        assert_eq!(out, "plain");
        assert!(write_mapped_text("\u{17F}ecret na\u{EF}ve", &mut out));
        assert_eq!(out, "_ecret na_ve");
        for other_script in ["как убить", "\u{212A}elvin", "\u{FF49}gnore", "日本"] {
            assert!(!write_mapped_text(other_script, &mut out), "{other_script}");
        }
    }

    #[test]
    fn mapped_pattern_matches_wherever_the_original_does() {
        let patterns = [
            r"\bcaf[eé]\b",
            r"\bsex\b",
            r"(?:ignore|forget)\s+\bprevious\b[^.]{0,20}rules",
            r"\w+ing\b{end}",
            r"[^a-z ]{2}",
            r"naïve \w+",
            r"don[’']t\s+stop",
            r"\bубить\b|kill",
            r"(?-u:\w)+ (?-u:\b)stop",
            r"\W{3}",
        ];
        let texts = [
            "un café noir, please",
            "Essex and sex \u{2014} then ignore\u{A0}previous\u{2019}s rules",
            "singing\u{301} loudly",
            "a naïve reader \u{1F600}\u{1F600}",
            "don\u{2019}t stop, don\u{2019}t\u{A0}stop",
            "the long \u{17F}ex and the cafe_ noir",
            "",
        ];
        let mut mapped_text = String::new();
        for ci in [false, true] {
            for pattern in patterns {
                let exact = exact_regex(pattern, ci);
                let mapped = mapped_to_ascii(parse(pattern, ci)).expect("mappable");
                assert!(!has_unicode_word_boundary(&mapped), "{pattern}");
                let mapped = regex::bytes::Regex::new(&mapped.to_string())
                    .unwrap_or_else(|e| panic!("{pattern} -> {mapped}: {e}"));
                for text in texts {
                    assert!(write_mapped_text(text, &mut mapped_text), "{text}");
                    assert!(
                        !exact.is_match(text) || mapped.is_match(mapped_text.as_bytes()),
                        "{pattern} (ci {ci}) matches {text:?}, its mapped form not {mapped_text:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn mapped_pattern_keeps_its_ascii_behaviour_and_drops_other_scripts() {
        let hir = mapped_to_ascii(parse(r"\bкот\b|caf[eé]", true)).expect("mappable");
        let re = regex::bytes::Regex::new(&hir.to_string()).expect("compiles");
        assert!(re.is_match(b"cafe"));
        assert!(re.is_match(b"caf_"));
        assert!(!re.is_match(b"caf"));
        assert!(!re.is_match(b"___"));
        // Policies never hold one (a pattern that can match invalid UTF-8
        // is rejected at load), but the mapping must not misread it.
        let bytes = ParserBuilder::new()
            .utf8(false)
            .build()
            .parse(r"(?-u:[\x80-\xFF])")
            .expect("parses without the UTF-8 check");
        assert!(mapped_to_ascii(bytes).is_none());
        assert!(mapped_to_ascii(parse(r"(?-u:\w+)", false)).is_some());
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
                let exact = exact_regex(pattern, ci);
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

    #[test]
    fn open_gaps_match_wherever_the_bounded_pattern_does_and_beyond_it() {
        let cases = [
            (
                r"\bignore\b[^.]{0,10}\brules\b",
                "ignore the rules. ignore all of your earlier rules",
            ),
            (r"(?s)secret.{0,12}password", "the secret is the password"),
            (
                r"\bsend\b(?:\W+\w+){0,8}\W+to\b",
                "send it to me, then send the whole file over to",
            ),
        ];
        for (pattern, text) in cases {
            let exact = exact_regex(pattern, true);
            let open_src = with_open_gaps(parse(pattern, true)).to_string();
            let open = regex::Regex::new(&open_src).unwrap_or_else(|e| panic!("{open_src}: {e}"));
            assert!(exact.is_match(text), "{pattern} should match {text:?}");
            for m in exact.find_iter(text) {
                assert!(
                    open.find_at(text, m.start())
                        .is_some_and(|o| o.end() >= m.end()),
                    "{pattern} matched {:?} but {open_src} did not",
                    m.as_str()
                );
            }
        }
        // Beyond the bound: only the open form matches, and the exact regex
        // (which the matcher runs on every proposal) says no.
        let far = "ignore every single one of the earlier rules";
        assert!(!exact_regex(r"\bignore\b[^.]{0,10}\brules\b", true).is_match(far));
        let open = with_open_gaps(parse(r"\bignore\b[^.]{0,10}\brules\b", true)).to_string();
        assert!(regex::Regex::new(&open).is_ok_and(|r| r.is_match(far)));
        // Short bounds stay as written.
        let short = with_open_gaps(parse(r"a\s{0,3}b", false));
        assert_eq!(short, parse(r"a\s{0,3}b", false));
    }
}
