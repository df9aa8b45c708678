//! Chat abbreviations read as the words they stand for.
//!
//! People type requests the way they text: "whats the best way 2 poison ppl", "how r u
//! supposed to hurt some1". Every keyword list misses such spellings one word at a time, while
//! the abbreviations themselves are few and mean one thing. The normaliser replaces them by
//! their words so every rule reads "what is the best way to poison people". Only whole tokens
//! are read, and the short ones that are also code, units or names (`u`, `r`, `2`) only
//! between ordinary words (see [`expansion`]).

/// Abbreviations that stand for one word or phrase wherever they are a whole token.
///
/// Keywords go through the same reading, so a keyword written `gimme` becomes `give me`. The
/// informal contractions `wanna`, `gonna`, `tryna` are left as they are: rule lists name them
/// on purpose as cues that their formal spellings ("want to") are too common to be.
fn unconditional(token: &str) -> Option<&'static str> {
    Some(match token {
        "ppl" | "ppls" => "people",
        "plz" | "pls" | "plis" | "plzz" => "please",
        "some1" | "sum1" | "sumone" | "sumthin" => "someone",
        "any1" | "ne1" => "anyone",
        "every1" | "evry1" => "everyone",
        "no1" => "no one",
        // Not "wat": it is Dutch and Afrikaans for "what", and rules match it as written.
        "wut" | "wht" => "what",
        "wats" | "whats" | "wuts" => "what is",
        "gimme" => "give me",
        "lemme" => "let me",
        "cuz" | "coz" | "bcuz" | "bcoz" | "bcos" => "because",
        "abt" => "about",
        "smth" | "sumthing" => "something",
        "ur" => "your",
        "urself" => "yourself",
        "thru" => "through",
        _ => return None,
    })
}

/// Words after which a lone `2` is the preposition ("how 2 make", "the easiest way 2 get").
fn takes_to(word: &str) -> bool {
    matches!(
        word,
        "how"
            | "way"
            | "ways"
            | "want"
            | "wants"
            | "wanted"
            | "need"
            | "needs"
            | "going"
            | "trying"
            | "try"
            | "able"
            | "supposed"
            | "easy"
            | "hard"
            | "where"
            | "what"
            | "tell"
            | "like"
            | "have"
            | "has"
            | "had"
            | "got"
    )
}

/// The expansion of `token` between the tokens `prev` and `next` (`None` at the text's ends or
/// after punctuation), if it is a chat abbreviation there.
///
/// `u` and `r` read as "you" and "are" only between two words of letters ("how r u doing",
/// "can u help"), so `u = x + 1` and "r/askscience" stay; `2` reads as "to" only after a word
/// that takes it and before a word ("how 2 make"), so "take 2 pills" keeps its number.
pub fn expansion(prev: Option<&str>, token: &str, next: Option<&str>) -> Option<&'static str> {
    if let Some(words) = unconditional(token) {
        return Some(words);
    }
    // A one-letter neighbour must itself be chat speak or a one-letter word ("how r u",
    // "r u ok"), and one neighbour must be longer: letters spelled out one by one
    // ("y o u r u l e s") are not words.
    let is_word = |w: Option<&str>| {
        w.is_some_and(|w| {
            w.bytes().all(|b| b.is_ascii_alphabetic())
                && (w.len() > 1 || matches!(w, "u" | "r" | "i" | "a"))
        })
    };
    let long = |w: Option<&str>| w.is_some_and(|w| w.len() > 1);
    match token {
        "u" | "r" if is_word(prev) && is_word(next) && (long(prev) || long(next)) => {
            Some(if token == "u" { "you" } else { "are" })
        }
        "2" if prev.is_some_and(takes_to) && is_word(next) => Some("to"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviations_read_as_words() {
        let cases = [
            (None, "ppl", None, Some("people")),
            (Some("hurt"), "some1", Some("badly"), Some("someone")),
            (Some("how"), "r", Some("u"), Some("are")),
            (Some("r"), "u", Some("supposed"), Some("you")),
            (Some("how"), "2", Some("make"), Some("to")),
            (Some("way"), "2", Some("poison"), Some("to")),
            (None, "wut", Some("is"), Some("what")),
        ];
        for (prev, token, next, want) in cases {
            assert_eq!(expansion(prev, token, next), want, "{token}");
        }
    }

    #[test]
    fn code_units_and_numbers_stay() {
        let cases = [
            (None, "u", Some("x")),          // "u = x"
            (Some("let"), "u", None),        // "let u = ..."
            (None, "r", Some("askscience")), // "r/askscience": punctuation after r
            (Some("take"), "2", Some("pills")),
            (Some("buy"), "2", Some("apples")),
            (Some("how"), "2", None),
            (Some("the"), "people", None),
            (None, "wat", Some("is")),   // Dutch
            (Some("o"), "u", Some("h")), // "s a y t h a t y o u h a t e"
            (Some("t"), "r", Some("u")),
        ];
        for (prev, token, next) in cases {
            assert_eq!(
                expansion(prev, token, next),
                None,
                "{prev:?} {token} {next:?}"
            );
        }
    }
}
