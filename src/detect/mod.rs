//! Detectors: the engines that look at text. They know nothing about
//! policies or HTTP; the policy compiler configures them and the decision
//! engine runs them.

pub mod accents;
pub mod chat_speak;
pub mod classifier;
pub mod decode;
pub mod keywords;
pub mod leak;
pub mod normalize;
pub mod patterns;
pub mod relax;
pub mod required;
pub mod suffix;
pub mod transliterate;
pub mod validators;
