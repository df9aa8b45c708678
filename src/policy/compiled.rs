//! The immutable runtime form of a policy. Built once by [`super::compile`],
//! shared behind an `Arc` by every request; nothing here is mutated after
//! compilation.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::model::{
    Action, AppliesTo, Form, ObfuscationSign, RefusalMode, Role, Severity, StreamMode, Validator,
};
use crate::detect::classifier::Model;
use crate::detect::decode::{DecodeLimits, Encoding};
use crate::detect::keywords::KeywordMatcher;
use crate::detect::patterns::PatternMatcher;

/// A compiled policy: rules, their signals, and one matcher per text form.
#[derive(Debug, Clone)]
pub struct CompiledPolicy {
    /// Name for headers, metrics and audit.
    pub name: String,
    /// How blocked requests are answered.
    pub refusal_mode: RefusalMode,
    /// Refusal text when neither the rule nor its category has one.
    pub refusal_message: String,
    /// Safety system message for `steer`.
    pub steer_message: String,
    /// Streaming moderation settings.
    pub stream: StreamSettings,
    /// System-prompt leak protection.
    pub leak: LeakSettings,
    /// Roles whose texts blocking and steering rules skip on input.
    pub trusted_roles: Vec<Role>,
    /// Decoding limits, `None` when decoding is off.
    pub decode: Option<DecodeLimits>,
    /// All enabled rules.
    pub rules: Vec<CompiledRule>,
    /// All signals of all rules; rules refer to them by index.
    pub signals: Vec<CompiledSignal>,
    /// Per signal whose hits others read (its `hits_from` index): when
    /// every signal reading those hits has a `near`, their frames. Such
    /// patterns are searched only while one of the frames may have hits.
    pub near_only_frames: Vec<Option<Vec<u32>>>,
    /// Categories by id.
    pub categories: BTreeMap<String, CompiledCategory>,
    /// Keyword and regex matchers per direction and form.
    pub matchers: DirectionMatchers,
    /// Loaded classifier models; signals refer to them by index.
    pub classifiers: Vec<Arc<Model>>,
    /// Files the policy was built from (for reload watching and messages).
    pub files: Vec<PathBuf>,
    /// Classifier model files it loaded (also watched for reloads).
    pub model_files: Vec<PathBuf>,
}

/// System-prompt leak protection, from the policy's `leak` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeakSettings {
    /// Plant and watch for a canary token.
    pub canary: bool,
    /// Verbatim run length in words (0 = off).
    pub verbatim_words: usize,
    /// Refusal text for leaks.
    pub message: Option<String>,
}

impl LeakSettings {
    /// Any leak check is on.
    pub fn enabled(&self) -> bool {
        self.canary || self.verbatim_words > 0
    }
}

/// Streaming moderation, resolved from the policy's `stream` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// Strategy.
    pub mode: StreamMode,
    /// Characters held back in `window` mode.
    pub holdback_chars: usize,
    /// Cap of `buffer` mode, bytes.
    pub buffer_max_bytes: usize,
}

/// The matchers of each direction. Each holds only the patterns of signals
/// whose rules see that direction: an answer is not searched for the
/// hundreds of request-only patterns, which was most of the cost of
/// checking a short answer.
#[derive(Debug, Clone, Default)]
pub struct DirectionMatchers {
    /// For requests.
    pub input: BTreeMap<Form, FormMatchers>,
    /// For answers.
    pub output: BTreeMap<Form, FormMatchers>,
}

impl DirectionMatchers {
    /// The matchers per form for texts of `direction`.
    pub fn get(&self, direction: super::Direction) -> &BTreeMap<Form, FormMatchers> {
        match direction {
            super::Direction::Input => &self.input,
            super::Direction::Output => &self.output,
        }
    }
}

/// The matchers of one text form.
#[derive(Debug, Clone)]
pub struct FormMatchers {
    /// Literal phrases.
    pub keywords: KeywordMatcher,
    /// Regular expressions.
    pub patterns: PatternMatcher,
}

/// A category after root overrides were applied.
#[derive(Debug, Clone)]
pub struct CompiledCategory {
    /// Identifier.
    pub id: String,
    /// MLCommons hazard code.
    pub mlcommons: Option<String>,
    /// OpenAI moderation names.
    pub openai: Vec<String>,
    /// Refusal text.
    pub message: Option<String>,
}

/// One enabled rule.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    /// Rule id.
    pub id: Arc<str>,
    /// Category id.
    pub category: Option<Arc<str>>,
    /// Directions it sees.
    pub applies_to: AppliesTo,
    /// Roles it sees (`None` = all).
    pub roles: Option<Vec<Role>>,
    /// Roles it does not read on input: the policy's `trusted_roles` for a
    /// blocking or steering rule without its own `roles:`, else empty.
    pub trusted_skipped: Vec<Role>,
    /// Indices into [`CompiledPolicy::signals`].
    pub signals: Vec<u32>,
    /// Score needed to fire.
    pub threshold: f32,
    /// Positive signals must fall within this many bytes.
    pub window: Option<usize>,
    /// Which texts it reads: the plain text, decoded payloads, or both.
    pub decoded: DecodedScope,
    /// Payloads it reads must have one of these encodings in their chain
    /// (empty: any).
    pub encodings: Vec<Encoding>,
    /// Action on input.
    pub input_action: Action,
    /// Action on output.
    pub output_action: Action,
    /// Severity.
    pub severity: Severity,
    /// Refusal text (rule's own, else its category's).
    pub message: Option<String>,
    /// Shadow mode: findings are recorded, never enforced.
    pub monitor: bool,
    /// File it came from.
    pub file: PathBuf,
}

impl CompiledRule {
    /// Whether the rule looks at a text of this direction and role.
    pub fn sees(&self, direction: super::Direction, role: Role) -> bool {
        self.applies_to.includes(direction)
            && self
                .roles
                .as_ref()
                .is_none_or(|roles| roles.contains(&role))
            && !(direction == super::Direction::Input && self.trusted_skipped.contains(&role))
    }

    /// Whether the rule reads the plain (not decoded) text.
    pub fn reads_plain(&self) -> bool {
        self.decoded != DecodedScope::PayloadsOnly
    }

    /// Whether the rule reads some decoded payloads.
    pub fn reads_payloads(&self) -> bool {
        self.decoded != DecodedScope::PlainOnly
    }

    /// Whether the rule reads a payload decoded through `chain`.
    pub fn reads_payload(&self, chain: &[Encoding]) -> bool {
        self.reads_payloads()
            && (self.encodings.is_empty() || chain.iter().any(|e| self.encodings.contains(e)))
    }

    /// The rule's action in a direction.
    pub fn action(&self, direction: super::Direction) -> Action {
        match direction {
            super::Direction::Input => self.input_action,
            super::Direction::Output => self.output_action,
        }
    }
}

/// The texts a rule reads (`decoded:` in YAML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodedScope {
    /// The text and the payloads decoded from it (`decoded: true`).
    PlainAndPayloads,
    /// The text as sent (`decoded: false`).
    PlainOnly,
    /// Decoded payloads only (`decoded: only`).
    PayloadsOnly,
}

/// Where a signal's evidence comes from.
#[derive(Debug, Clone)]
pub enum SignalSource {
    /// Keyword and/or regex matches (positions known).
    Matches {
        /// Forms its patterns were compiled into.
        forms: Vec<Form>,
        /// Checksum applied to each match.
        validate: Option<Validator>,
        /// The signal whose hits this one reads. Signals with the same
        /// patterns (the "request form" vocabulary repeated by every
        /// category, say) are matched once and share their hits; this is
        /// the first such signal's index, or the signal's own.
        hits_from: u32,
        /// Only hits close to a hit of another signal count (`near:`).
        near: Option<Near>,
    },
    /// A classifier score over the normalised text.
    Classifier {
        /// Index into [`CompiledPolicy::classifiers`].
        model: usize,
        /// Default threshold.
        threshold: f32,
        /// Per-role thresholds.
        role_thresholds: Vec<(Role, f32)>,
    },
    /// Obfuscation signs seen during normalisation.
    Obfuscation(Vec<ObfuscationSign>),
    /// The adversarial-suffix score of the text as sent
    /// ([`crate::detect::suffix::suffix_score`]) reaches this threshold.
    AdversarialSuffix {
        /// Score at or above which the signal matches.
        threshold: f32,
    },
}

/// The frame a signal's hits must lie next to (`near:` in YAML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Near {
    /// The signals whose hits are the frame (each as `hits_from` above).
    pub hits_from: Vec<u32>,
    /// Most bytes between a hit and a frame hit, either order.
    pub within: usize,
}

impl Near {
    /// Whether `hit` lies within reach of one of `frame`'s ranges.
    pub fn reaches(&self, hit: &std::ops::Range<usize>, frame: &[std::ops::Range<usize>]) -> bool {
        frame.iter().any(|f| {
            // Zero when they overlap: one of the two differences saturates.
            let gap = hit
                .start
                .saturating_sub(f.end)
                .max(f.start.saturating_sub(hit.end));
            gap <= self.within
        })
    }
}

/// One weighted signal of a rule.
#[derive(Debug, Clone)]
pub struct CompiledSignal {
    /// Index of the owning rule.
    pub rule: u32,
    /// Label for messages.
    pub name: Option<String>,
    /// Score contribution (negative for mitigating context).
    pub weight: f32,
    /// The rule cannot fire without it.
    pub required: bool,
    /// Evidence source.
    pub source: SignalSource,
}

/// For each signal index, the frames of the `near` signals reading its
/// hits, if every signal that reads them has a `near` (see
/// [`CompiledPolicy::near_only_frames`]).
pub fn near_only_frames(signals: &[CompiledSignal]) -> Vec<Option<Vec<u32>>> {
    let mut out: Vec<Option<Vec<u32>>> = vec![None; signals.len()];
    let mut plain = vec![false; signals.len()];
    for signal in signals {
        let SignalSource::Matches {
            hits_from, near, ..
        } = &signal.source
        else {
            continue;
        };
        let at = *hits_from as usize;
        match near {
            Some(near) => {
                if let Some(slot) = out.get_mut(at) {
                    let frames = slot.get_or_insert_with(Vec::new);
                    for frame in &near.hits_from {
                        if !frames.contains(frame) {
                            frames.push(*frame);
                        }
                    }
                }
            }
            None => {
                if let Some(p) = plain.get_mut(at) {
                    *p = true;
                }
            }
        }
    }
    for (slot, plain) in out.iter_mut().zip(plain) {
        if plain {
            *slot = None;
        }
    }
    out
}

/// A regex pattern without a required word (see
/// [`CompiledPolicy::ungated_patterns`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UngatedPattern {
    /// Id of the rule that owns it.
    pub rule: String,
    /// The text form it is matched on.
    pub form: Form,
    /// The pattern as compiled.
    pub pattern: String,
}

impl CompiledPolicy {
    /// The regex patterns searched over every text because no word of four
    /// or more letters is required in each of their matches, by rule: what a
    /// policy author rewrites (names the rare word every match needs, or
    /// moves short common words into a separate signal) to make a policy
    /// cheaper. `palisade policy check --cost` prints them.
    pub fn ungated_patterns(&self) -> Vec<UngatedPattern> {
        let mut out: Vec<UngatedPattern> = [&self.matchers.input, &self.matchers.output]
            .into_iter()
            .flat_map(|forms| forms.iter())
            .flat_map(|(form, matchers)| {
                matchers
                    .patterns
                    .searched_on_every_text()
                    .into_iter()
                    .map(move |(pattern, signal)| (*form, pattern, signal))
            })
            .filter_map(|(form, pattern, signal)| {
                let rule = self.signals.get(signal as usize)?.rule;
                Some(UngatedPattern {
                    rule: self.rules.get(rule as usize)?.id.to_string(),
                    form,
                    pattern: pattern.to_string(),
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Signals of every rule, for inspection.
    pub fn signal(&self, index: u32) -> Option<&CompiledSignal> {
        self.signals.get(index as usize)
    }
}
