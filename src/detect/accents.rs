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

/// `pattern` (regex source) with every accented Latin letter written as
/// itself made optional: outside a class `ó` becomes `[oó]` (`ß` becomes
/// `(?:ß|ss)`), inside a class its one-letter spelling joins the class
/// (`[aáà]` gains `a`; a range endpoint is left alone, as is a longer
/// spelling there). Escapes (`\é`, `\x{e9}`, `\p{..}`) are copied as they
/// are. `None` when there is nothing to relax.
///
/// Why the source and not the parsed pattern: a parsed pattern printed
/// back spells out every Unicode class (`\w` alone is thousands of
/// characters), which made each relaxed pattern tens of kilobytes to store
/// and parse again; the source edit keeps the pattern as its author wrote
/// it, plus a few classes.
pub fn accents_optional_source(pattern: &str) -> Option<String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 16);
    let mut changed = false;
    // For each open class, whether it is negated (or inside a negated one):
    // a letter added there would remove matches instead of adding them.
    let mut negated: Vec<bool> = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c == '\\' {
            i = copy_escape(&chars, i, &mut out);
            continue;
        }
        if negated.is_empty() {
            match (c, unaccented(c)) {
                ('[', _) => {
                    out.push(c);
                    i += 1;
                    // A leading `^`, then a leading `]`, are part of the class.
                    let negation = chars.get(i) == Some(&'^');
                    negated.push(negation);
                    if negation {
                        out.push('^');
                        i += 1;
                    }
                    if chars.get(i) == Some(&']') {
                        out.push(']');
                        i += 1;
                    }
                    continue;
                }
                (_, Some(plain)) if plain.chars().count() == 1 => {
                    out.push('[');
                    out.push(c);
                    out.push_str(&plain);
                    out.push(']');
                    changed = true;
                }
                (_, Some(plain)) => {
                    out.push_str("(?:");
                    out.push(c);
                    out.push('|');
                    out.push_str(&plain);
                    out.push(')');
                    changed = true;
                }
                _ => out.push(c),
            }
            i += 1;
            continue;
        }
        match c {
            '[' if chars.get(i + 1) == Some(&':') => {
                // An ASCII class such as `[:alpha:]`: copied to its `:]`.
                while let Some(&d) = chars.get(i) {
                    out.push(d);
                    i += 1;
                    if d == ']' {
                        break;
                    }
                }
                continue;
            }
            '[' => {
                let outer = negated.last().copied().unwrap_or(false);
                let negation = chars.get(i + 1) == Some(&'^');
                negated.push(outer || negation);
                out.push(c);
                if negation {
                    out.push('^');
                    i += 1;
                }
                i += 1;
                continue;
            }
            ']' => {
                negated.pop();
                out.push(c);
                i += 1;
                continue;
            }
            _ => {}
        }
        out.push(c);
        let in_range = chars.get(i + 1) == Some(&'-')
            && chars.get(i + 2).is_some_and(|n| *n != ']')
            || i > 0 && chars.get(i - 1) == Some(&'-') && i > 1 && chars.get(i - 2) != Some(&'[');
        if let Some(plain) = unaccented(c)
            && !in_range
            && negated.last() == Some(&false)
            && plain.chars().count() == 1
        {
            out.push_str(&plain);
            changed = true;
        }
        i += 1;
    }
    changed.then_some(out)
}

/// Copies the escape starting at `chars[i]` (a backslash) to `out` and
/// returns the index after it: `\x{..}`, `\u{..}`, `\p{..}` and `\P{..}`
/// up to their closing brace, any other escape as two characters.
fn copy_escape(chars: &[char], mut i: usize, out: &mut String) -> usize {
    out.push('\\');
    i += 1;
    let Some(&e) = chars.get(i) else {
        return i;
    };
    out.push(e);
    i += 1;
    if matches!(e, 'x' | 'u' | 'U' | 'p' | 'P') && chars.get(i) == Some(&'{') {
        while let Some(&d) = chars.get(i) {
            out.push(d);
            i += 1;
            if d == '}' {
                break;
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn relaxed(pattern: &str) -> Option<regex::Regex> {
        accents_optional_source(pattern).map(|src| {
            regex::RegexBuilder::new(&src)
                .case_insensitive(true)
                .build()
                .unwrap_or_else(|e| panic!("{pattern} -> {src}: {e}"))
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
    fn ranges_and_escapes_are_kept_as_written() {
        assert_eq!(accents_optional_source(r"[a-zà-ÿ]+"), None);
        assert_eq!(accents_optional_source(r"\x{e9}t\é"), None);
        assert_eq!(
            accents_optional_source(r"\p{Greek}é").as_deref(),
            Some(r"\p{Greek}[ée]")
        );
        assert_eq!(
            accents_optional_source(r"[^é]"),
            None,
            "negated: left alone"
        );
        assert_eq!(accents_optional_source(r"[]é]").as_deref(), Some(r"[]ée]"));
        assert_eq!(
            accents_optional_source(r"[[:alpha:]ü]").as_deref(),
            Some(r"[[:alpha:]üu]")
        );
    }

    #[test]
    fn broad_classes_and_plain_patterns_are_left_alone() {
        assert!(relaxed(r"ignore [^.]{0,40} instructions").is_none());
        assert!(relaxed(r"\w+ing").is_none());
        assert!(relaxed(r"how to (?:make|build) a bomb").is_none());
    }
}
