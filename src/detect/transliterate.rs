//! Latin readings of phonetic scripts that jailbreak generators mix into English words.
//!
//! Tools that "obfuscate" a prompt for a model (Pliny's mixed-script transforms and their
//! copies) spell English words partly in katakana and runes: `yオウr` for "your", `レsポンセ`
//! for "response", `ᚋᚒᚄᚈ` for "must". A model reads these back easily; a matcher sees
//! characters with no ASCII skeleton (or, worse, a confusables table folds `ウ` to `j`). Both
//! scripts are phonetic, so reading them as their usual romanisation (Hepburn for kana, the
//! standard letter values for Ogham and the futhark runes) gives the matchers the word the
//! attacker meant without guessing. The normaliser decides where this applies (runes always,
//! kana only in Latin-dominant text, so Japanese prose is left alone).

/// Hepburn readings of the katakana block from U+30A1 (small a) to U+30FA (vo); hiragana
/// U+3041..U+3096 are the same syllables 0x60 code points lower. The small `ッ` (a doubled
/// consonant) reads as nothing.
const KATAKANA: [&str; 90] = [
    "a", "a", "i", "i", "u", "u", "e", "e", "o",
    "o", // ァ ア ィ イ ゥ ウ ェ エ ォ オ
    "ka", "ga", "ki", "gi", "ku", "gu", "ke", "ge", "ko",
    "go", // カ ガ キ ギ ク グ ケ ゲ コ ゴ
    "sa", "za", "shi", "ji", "su", "zu", "se", "ze", "so",
    "zo", // サ ザ シ ジ ス ズ セ ゼ ソ ゾ
    "ta", "da", "chi", "ji", "", "tsu", "zu", "te", "de",
    "to", // タ ダ チ ヂ ッ ツ ヅ テ デ ト
    "do", "na", "ni", "nu", "ne", "no", "ha", "ba", "pa",
    "hi", // ド ナ ニ ヌ ネ ノ ハ バ パ ヒ
    "bi", "pi", "fu", "bu", "pu", "he", "be", "pe", "ho",
    "bo", // ビ ピ フ ブ プ ヘ ベ ペ ホ ボ
    "po", "ma", "mi", "mu", "me", "mo", "ya", "ya", "yu",
    "yu", // ポ マ ミ ム メ モ ャ ヤ ュ ユ
    "yo", "yo", "ra", "ri", "ru", "re", "ro", "wa", "wa",
    "wi", // ョ ヨ ラ リ ル レ ロ ヮ ワ ヰ
    "we", "wo", "n", "vu", "ka", "ke", "va", "vi", "ve",
    "vo", // ヱ ヲ ン ヴ ヵ ヶ ヷ ヸ ヹ ヺ
];

/// Ogham letters U+1681 (beith) to U+169A (peith). Fearn reads `v`, its value in the mixed-script
/// generators (`ᚇイᚃイデr`, "divider").
const OGHAM: [&str; 26] = [
    "b", "l", "v", "s", "n", "h", "d", "t", "c", "q", "m", "g", "ng", "z", "r", "a", "o", "u", "e",
    "i", "ea", "oi", "ui", "ia", "ae", "p",
];

/// Runic letters U+16A0 (fehu) to U+16EA (the Anglo-Saxon and later variants included).
const RUNES: [&str; 75] = [
    "f", "v", "u", "y", "y", "w", "th", "th", "a",
    "o", // ᚠ ᚡ ᚢ ᚣ ᚤ ᚥ ᚦ ᚧ ᚨ ᚩ
    "a", "ae", "o", "o", "o", "oe", "on", "r", "k",
    "c", // ᚪ ᚫ ᚬ ᚭ ᚮ ᚯ ᚰ ᚱ ᚲ ᚳ
    "k", "g", "ng", "g", "g", "w", "h", "h", "h",
    "h", // ᚴ ᚵ ᚶ ᚷ ᚸ ᚹ ᚺ ᚻ ᚼ ᚽ
    "n", "n", "n", "i", "e", "j", "j", "a", "a",
    "ei", // ᚾ ᚿ ᛀ ᛁ ᛂ ᛃ ᛄ ᛅ ᛆ ᛇ
    "p", "z", "s", "s", "s", "c", "z", "t", "t",
    "d", // ᛈ ᛉ ᛊ ᛋ ᛌ ᛍ ᛎ ᛏ ᛐ ᛑ
    "b", "b", "p", "p", "e", "m", "m", "m", "l",
    "l", // ᛒ ᛓ ᛔ ᛕ ᛖ ᛗ ᛘ ᛙ ᛚ ᛛ
    "ng", "ng", "d", "o", "ea", "io", "q", "k", "k",
    "st", // ᛜ ᛝ ᛞ ᛟ ᛠ ᛡ ᛢ ᛣ ᛤ ᛥ
    "r", "r", "l", "q", "x", // ᛦ ᛧ ᛨ ᛩ ᛪ
];

/// Which phonetic script a character belongs to, for the normaliser's decision where to read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Script {
    /// Hiragana and katakana: a real writing system, read only inside Latin-dominant text.
    Kana,
    /// Ogham and runes: nobody writes a prompt in them, so they are always read.
    Runic,
}

/// The Latin reading of `c` and its script, if `c` is a kana or runic letter.
pub fn latin_reading(c: char) -> Option<(&'static str, Script)> {
    let cp = u32::from(c);
    let at = |table: &[&'static str], first: u32| table.get((cp - first) as usize).copied();
    match cp {
        0x30A1..=0x30FA => at(&KATAKANA, 0x30A1).map(|r| (r, Script::Kana)),
        0x3041..=0x3096 => at(&KATAKANA, 0x3041).map(|r| (r, Script::Kana)),
        0x1681..=0x169A => at(&OGHAM, 0x1681).map(|r| (r, Script::Runic)),
        0x16A0..=0x16EA => at(&RUNES, 0x16A0).map(|r| (r, Script::Runic)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(word: &str) -> String {
        word.chars()
            .map(|c| latin_reading(c).map_or(c.to_string(), |(r, _)| r.to_string()))
            .collect()
    }

    #[test]
    fn katakana_and_hiragana_read_as_hepburn() {
        assert_eq!(read("yオウr"), "your");
        assert_eq!(read("レsポンセ"), "response");
        assert_eq!(read("アボウt"), "about");
        assert_eq!(read("カラオケ"), "karaoke");
        assert_eq!(read("すし"), "sushi");
        assert_eq!(read("ヴ"), "vu");
        assert_eq!(read("ヺ"), "vo");
    }

    #[test]
    fn ogham_and_runes_read_as_letters() {
        assert_eq!(read("ᚋᚒᚄᚈ"), "must");
        assert_eq!(read("ᚇイᚃイデr"), "divider");
        assert_eq!(read("ᚠᚢᚦᚨᚱᚲ"), "futhark");
        assert_eq!(read("ᛪ"), "x");
    }

    #[test]
    fn other_characters_have_no_reading() {
        for c in ['a', 'é', 'ー', '・', '東', 'ж', ' ', '᚛', '᛫', 'ᛮ'] {
            assert_eq!(latin_reading(c), None, "{c}");
        }
    }
}
