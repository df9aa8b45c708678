//! Accent-optional policy words.
//!
//! Why: people type without accents (phone keyboards, a foreign layout,
//! haste): "como hackear el wifi", "comment empoisonner", "wie kann ich ihn
//! toten". A rule written with the accents ("cómo", "töten") misses all of
//! them, and the faithful `normalized` form keeps accents (they are real
//! letters). A signal that sets `accents_optional` gets every accented Latin
//! letter of its words made optional by the policy compiler: each keyword is
//! also listed without its accents, and in a regex `ó` becomes `[oó]`. The
//! text itself is never changed, so a finding still points at what the
//! client sent.
//!
//! It is a per-signal choice, not a global one: measured on the whole
//! default policy (session 16), making every signal accent-optional blocked
//! six more everyday texts and lost two attacks, because unaccented
//! spellings are other words ("como" is also "as", French "décoder"
//! becomes the English "decoder", the Turkish dotless `ı` is not an `i`).

use regex_syntax::hir::{Class, ClassUnicode, ClassUnicodeRange, Hir, HirKind};

use super::relax::{map_leaves, unchanged_leaf};
use unicode_normalization::UnicodeNormalization;

/// The unaccented spelling of an accented Latin letter, as people write it
/// without the accent: `é` → `e`, `ñ` → `n`, `ß` → `ss`, `æ` → `ae`, `ø` →
/// `o`, `ł` → `l`. `None` for any other character (ASCII, other scripts).
pub fn unaccented(c: char) -> Option<String> {
    if !matches!(u32::from(c), 0x00C0..=0x024F | 0x1E00..=0x1EFF) {
        return None;
    }
    let special = match c {
        'ß' => Some("ss"),
        'ẞ' => Some("SS"),
        'æ' => Some("ae"),
        'Æ' => Some("AE"),
        'œ' => Some("oe"),
        'Œ' => Some("OE"),
        'ø' => Some("o"),
        'Ø' => Some("O"),
        'ł' => Some("l"),
        'Ł' => Some("L"),
        'đ' => Some("d"),
        'Đ' => Some("D"),
        'þ' => Some("th"),
        'Þ' => Some("TH"),
        'ð' => Some("d"),
        'Ð' => Some("D"),
        'ı' => Some("i"),
        _ => None,
    };
    if let Some(s) = special {
        return Some(s.to_string());
    }
    let base: String = std::iter::once(c).nfd().filter(char::is_ascii).collect();
    (base.len() == 1 && base.bytes().all(|b| b.is_ascii_alphabetic())).then_some(base)
}

/// `text` with every accented Latin letter replaced by its unaccented
/// spelling; `None` if it has none.
pub fn without_accents(text: &str) -> Option<String> {
    if !text.chars().any(|c| unaccented(c).is_some()) {
        return None;
    }
    Some(
        text.chars()
            .map(|c| unaccented(c).unwrap_or_else(|| c.to_string()))
            .collect(),
    )
}

/// Classes with more characters than this (negations, `\w`, `.`) are left
/// alone: they hold the ASCII letters already, and spelling out their
/// multi-letter alternatives would change what a repetition of them counts.
const MAX_CLASS_CHARS: u32 = 256;

/// `hir` with every accented Latin letter made optional: a letter `c` (or a
/// class holding it) also matches its [`unaccented`] spelling. Matches
/// everything `hir` matches, and the same text typed without accents.
/// `None` when `hir` has no accented Latin letter to relax.
pub fn accents_optional(hir: &Hir) -> Option<Hir> {
    has_accented_letter(hir).then(|| relax(hir.clone()))
}

fn has_accented_letter(hir: &Hir) -> bool {
    match hir.kind() {
        HirKind::Literal(lit) => {
            std::str::from_utf8(&lit.0).is_ok_and(|s| s.chars().any(|c| unaccented(c).is_some()))
        }
        HirKind::Class(Class::Unicode(class)) => {
            small(class) && class_chars(class).any(|c| unaccented(c).is_some())
        }
        HirKind::Class(Class::Bytes(_)) | HirKind::Empty | HirKind::Look(_) => false,
        HirKind::Repetition(rep) => has_accented_letter(&rep.sub),
        HirKind::Capture(cap) => has_accented_letter(&cap.sub),
        HirKind::Concat(subs) | HirKind::Alternation(subs) => subs.iter().any(has_accented_letter),
    }
}

fn relax(hir: Hir) -> Hir {
    map_leaves(hir, &|kind| match kind {
        HirKind::Literal(lit) => match std::str::from_utf8(&lit.0) {
            Ok(s) => Hir::concat(s.chars().map(letter).collect()),
            Err(_) => Hir::literal(lit.0),
        },
        HirKind::Class(Class::Unicode(class)) if small(&class) => relax_class(class),
        other => unchanged_leaf(other),
    })
}

/// One literal letter: itself, or itself or its unaccented spelling.
fn letter(c: char) -> Hir {
    match unaccented(c) {
        None => Hir::literal(c.to_string().into_bytes()),
        Some(_) => relax_class(ClassUnicode::new([ClassUnicodeRange::new(c, c)])),
    }
}

/// A class plus the unaccented spellings of its accented letters: one-letter
/// spellings join the class, longer ones (`ss`, `ae`) become alternatives.
fn relax_class(mut class: ClassUnicode) -> Hir {
    let mut longer: Vec<String> = Vec::new();
    let mut single: Vec<ClassUnicodeRange> = Vec::new();
    for c in class_chars(&class) {
        let Some(plain) = unaccented(c) else {
            continue;
        };
        let mut chars = plain.chars();
        match (chars.next(), chars.next()) {
            (Some(p), None) => {
                single.push(ClassUnicodeRange::new(p, p));
                single.push(ClassUnicodeRange::new(
                    p.to_ascii_lowercase(),
                    p.to_ascii_lowercase(),
                ));
            }
            _ => {
                let lower = plain.to_ascii_lowercase();
                if !longer.contains(&lower) {
                    longer.push(lower);
                }
            }
        }
    }
    class.union(&ClassUnicode::new(single));
    let class = Hir::class(Class::Unicode(class));
    if longer.is_empty() {
        return class;
    }
    let mut branches = vec![class];
    branches.extend(longer.into_iter().map(|s| Hir::literal(s.into_bytes())));
    Hir::alternation(branches)
}

fn small(class: &ClassUnicode) -> bool {
    class
        .ranges()
        .iter()
        .map(|r| u32::from(r.end()) - u32::from(r.start()) + 1)
        .sum::<u32>()
        <= MAX_CLASS_CHARS
}

fn class_chars(class: &ClassUnicode) -> impl Iterator<Item = char> + '_ {
    class.ranges().iter().flat_map(|r| r.start()..=r.end())
}

#[cfg(test)]
mod tests {
    use super::*;
    use regex_syntax::ParserBuilder;

    fn relaxed(pattern: &str) -> Option<regex::Regex> {
        let hir = ParserBuilder::new()
            .case_insensitive(true)
            .build()
            .parse(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"));
        // Re-parsed case-insensitively, as the policy compiler does.
        accents_optional(&hir).map(|h| {
            regex::RegexBuilder::new(&h.to_string())
                .case_insensitive(true)
                .build()
                .unwrap_or_else(|e| panic!("{h}: {e}"))
        })
    }

    #[test]
    fn spellings_without_accents() {
        let cases = [
            ('é', "e"),
            ('ó', "o"),
            ('ñ', "n"),
            ('ü', "u"),
            ('ç', "c"),
            ('ã', "a"),
            ('ß', "ss"),
            ('æ', "ae"),
            ('ø', "o"),
            ('ł', "l"),
        ];
        for (c, plain) in cases {
            assert_eq!(unaccented(c).as_deref(), Some(plain), "{c}");
        }
        assert_eq!(unaccented('e'), None);
        assert_eq!(unaccented('ж'), None);
        assert_eq!(
            without_accents("cómo envenenar").as_deref(),
            Some("como envenenar")
        );
        assert_eq!(without_accents("how to"), None);
    }

    #[test]
    fn accented_letters_become_optional() {
        let table = [
            (r"\bc[oó]mo hackear\b", None, None),
            (
                r"\bcómo hackear\b",
                Some("como hackear el wifi"),
                Some("cómo hackear"),
            ),
            (r"\btöten\b", Some("wie kann ich ihn toten"), Some("töten")),
            (r"\bstraße\b", Some("eine strasse"), Some("straße")),
            (
                r"\bempoisonn(?:er|é)\b",
                Some("comment empoisonne un chien"),
                Some("empoisonner"),
            ),
        ];
        for (pattern, plain, accented) in table {
            let re = relaxed(pattern);
            match (plain, accented) {
                (Some(plain), Some(accented)) => {
                    let re = re.unwrap_or_else(|| panic!("{pattern} should be relaxed"));
                    assert!(re.is_match(plain), "{pattern} on {plain:?}");
                    assert!(re.is_match(accented), "{pattern} on {accented:?}");
                    assert!(
                        re.is_match(&accented.to_uppercase()),
                        "{pattern} upper-case"
                    );
                }
                _ => {
                    // Already accent-optional where it matters: the class
                    // [oó] is small and gets `o` again; still relaxed, same
                    // language.
                    if let Some(re) = re {
                        assert!(re.is_match("como hackear") && re.is_match("cómo hackear"));
                    }
                }
            }
        }
    }

    #[test]
    fn broad_classes_and_plain_patterns_are_left_alone() {
        assert!(relaxed(r"ignore [^.]{0,40} instructions").is_none());
        assert!(relaxed(r"\w+ing").is_none());
        assert!(relaxed(r"how to (?:make|build) a bomb").is_none());
    }
}
