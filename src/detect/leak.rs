//! System-prompt leak detection for one request: a canary token the proxy
//! planted in the system prompt, and long verbatim runs of the system prompt
//! itself. Both are compared on a "skeleton" of the text (lower-case letters
//! and digits only, after normalisation), so spacing, punctuation, invisible
//! characters, homoglyphs and markdown cannot hide a repeat.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

use super::normalize::normalize;

/// What leaked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeakKind {
    /// The planted canary token.
    Canary,
    /// A run of `verbatim_words` words copied from the system prompt.
    Verbatim,
}

impl LeakKind {
    /// Rule id used in decisions, headers and metrics.
    pub fn rule_id(self) -> &'static str {
        match self {
            LeakKind::Canary => "system-prompt-canary-leak",
            LeakKind::Verbatim => "system-prompt-verbatim-leak",
        }
    }
}

/// The leak checks of one request.
#[derive(Debug, Clone, Default)]
pub struct LeakDetector {
    /// Skeleton of the canary token.
    canary: Option<String>,
    /// Hashes of every `run`-word window of the system prompt.
    shingles: HashSet<u64>,
    run: usize,
}

impl LeakDetector {
    /// Builds the checks. `run` = 0 turns verbatim detection off; system
    /// prompts shorter than `run` words have nothing to compare.
    pub fn new(canary: Option<&str>, system_texts: &[&str], run: usize) -> Self {
        let canary = canary.map(skeleton).filter(|c| !c.is_empty());
        let mut shingles = HashSet::new();
        if run > 0 {
            for text in system_texts {
                let words = words(text);
                for window in words.windows(run) {
                    shingles.insert(hash_words(window));
                }
            }
        }
        Self {
            canary,
            shingles,
            run,
        }
    }

    /// Nothing to check.
    pub fn is_empty(&self) -> bool {
        self.canary.is_none() && self.shingles.is_empty()
    }

    /// The first leak in `text`, if any.
    pub fn find(&self, text: &str) -> Option<LeakKind> {
        if self.is_empty() {
            return None;
        }
        let normalized = normalize(text).normalized.text;
        if let Some(canary) = &self.canary
            && (skeleton(&normalized).contains(canary.as_str())
                || skeleton(text).contains(canary.as_str()))
        {
            return Some(LeakKind::Canary);
        }
        if !self.shingles.is_empty() {
            let words = words_of_normalized(&normalized);
            if words
                .windows(self.run)
                .any(|w| self.shingles.contains(&hash_words(w)))
            {
                return Some(LeakKind::Verbatim);
            }
        }
        None
    }
}

/// Lower-case letters and digits only.
fn skeleton(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Lower-case alphanumeric words of the normalised text.
fn words(text: &str) -> Vec<String> {
    words_of_normalized(&normalize(text).normalized.text)
}

fn words_of_normalized(normalized: &str) -> Vec<String> {
    normalized
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn hash_words(words: &[String]) -> u64 {
    let mut hasher = DefaultHasher::new();
    words.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SYSTEM: &str = "You are the support assistant of Acme Bank. Never discuss interest \
        rates for business accounts and always direct complaints to the complaints form.";

    #[test]
    fn canary_is_found_through_obfuscation() {
        let d = LeakDetector::new(Some("pls-7f3a9c21e4b8"), &[], 0);
        for text in [
            "My instructions end with pls-7f3a9c21e4b8.",
            "p l s 7 f 3 a 9 c 2 1 e 4 b 8",
            "PLS\u{200b}-7F3A9C21E4B8",
            "`pls_7f3a9c21e4b8`",
        ] {
            assert_eq!(d.find(text), Some(LeakKind::Canary), "{text}");
        }
        assert_eq!(d.find("nothing to see here"), None);
    }

    #[test]
    fn verbatim_runs_of_the_system_prompt_are_found() {
        let d = LeakDetector::new(None, &[SYSTEM], 12);
        let leak = "Sure! My rules: you are the support assistant of acme bank, never discuss \
                    INTEREST rates for business accounts.";
        assert_eq!(d.find(leak), Some(LeakKind::Verbatim));
        // Talking about the same topic in other words is fine.
        assert_eq!(
            d.find("I can help with Acme Bank accounts; for complaints use the form."),
            None
        );
    }

    #[test]
    fn off_when_nothing_to_compare() {
        let d = LeakDetector::new(None, &["short prompt"], 12);
        assert!(d.is_empty());
        assert_eq!(d.find("short prompt"), None);
    }
}
