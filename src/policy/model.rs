//! Serde types that mirror the policy YAML one to one.
//!
//! These are the *spec* types: what an author wrote, with defaults filled in by
//! serde. They are validated and compiled into [`super::CompiledPolicy`]; nothing
//! at request time reads them. Every struct rejects unknown keys.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One policy file. The root file may `include` rule-family and category files.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Format version; only `1` exists.
    #[serde(default)]
    pub version: Option<u32>,
    /// Name shown in decisions, headers and metrics.
    #[serde(default)]
    pub name: Option<String>,
    /// Free text for readers.
    #[serde(default)]
    pub description: Option<String>,
    /// Other policy files (relative to this one) whose rules are added.
    #[serde(default)]
    pub include: Vec<String>,
    /// How blocked requests are answered (root file only).
    #[serde(default)]
    pub refusal: Option<RefusalSpec>,
    /// Decoding of embedded payloads (root file only).
    #[serde(default)]
    pub decode: Option<DecodeSpec>,
    /// The safety system message used by `steer` (root file only).
    #[serde(default)]
    pub steer: Option<SteerSpec>,
    /// Shadow mode for the whole policy (root file only).
    #[serde(default)]
    pub monitor: bool,
    /// How streamed answers are moderated (root file only).
    #[serde(default)]
    pub stream: Option<StreamSpec>,
    /// System-prompt leak protection (root file only).
    #[serde(default)]
    pub leak: Option<LeakSpec>,
    /// Roles whose texts are written by the operator, not the end user
    /// (root file only; default none). On input, rules that would block or
    /// steer do not read these texts unless they name the role in their own
    /// `roles:`; `redact` and `flag` rules still read them.
    #[serde(default)]
    pub trusted_roles: Vec<Role>,
    /// Makes this file a category file: its rules inherit the category.
    #[serde(default)]
    pub category: Option<CategorySpec>,
    /// Per-category switches and actions set by the root policy.
    #[serde(default)]
    pub categories: BTreeMap<String, CategoryOverride>,
    /// Named signals that rules of any file of the policy take with
    /// `use: NAME`: one definition of a frame or a counterweight that
    /// several rules in several files read, instead of a copy in each
    /// (YAML anchors do not cross files). Names are unique across files.
    #[serde(default)]
    pub signals: BTreeMap<String, SignalSpec>,
    /// The rules of this file.
    #[serde(default)]
    pub rules: Vec<RuleSpec>,
}

/// How a refusal is delivered to the client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefusalMode {
    /// HTTP 200 with an assistant message carrying the refusal (clients render it).
    #[default]
    Message,
    /// HTTP 400 `content_filter` error (clients raise).
    Error,
}

/// The refusal block of the root policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RefusalSpec {
    /// `message` (default) or `error`.
    #[serde(default)]
    pub mode: RefusalMode,
    /// Default refusal text when a rule and its category give none.
    #[serde(default)]
    pub message: Option<String>,
}

/// Limits for decoding base64 / base32 / hex / binary / url / Morse / NATO / Braille / rot13 /
/// reversed payloads.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecodeSpec {
    /// Decode and rescan embedded payloads at all.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Nested decodings followed (base64 of hex of ...).
    #[serde(default = "default_depth")]
    pub max_depth: u8,
    /// Total decoded bytes per text; decode bombs stop here.
    #[serde(default = "default_decode_bytes")]
    pub max_output_bytes: usize,
}

/// How a streamed answer is held back while the output rules read it.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamSpec {
    /// `window` (default), `buffer` or `passthrough`.
    #[serde(default)]
    pub mode: StreamMode,
    /// `window` mode: characters kept back until the rules have seen them with
    /// this much text after them. At least the longest keyword and rule
    /// `window`; default 256 or the longest rule window, whichever is larger.
    #[serde(default)]
    pub holdback_chars: Option<usize>,
    /// `buffer` mode: largest answer held (bytes); a longer answer ends the
    /// stream with an error event (fail closed). Default 1 MiB.
    #[serde(default)]
    pub buffer_max_bytes: Option<usize>,
}

/// System-prompt leak protection: answers that repeat the system prompt
/// are blocked (also inside streams).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeakSpec {
    /// Plant a random canary token at the end of the first system (or
    /// developer) message of each chat request; an answer containing it,
    /// however spaced or disguised, is a leak.
    #[serde(default)]
    pub canary: bool,
    /// Block answers that copy this many consecutive words of the system
    /// prompt (0 = off). Leave off when system prompts carry documents the
    /// model is meant to quote.
    #[serde(default)]
    pub verbatim_words: usize,
    /// Refusal text for a leak (default: the policy's refusal message).
    #[serde(default)]
    pub message: Option<String>,
}

/// Streaming moderation strategy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum StreamMode {
    /// Release text once the rules have seen it with `holdback_chars` of
    /// right context: low latency, linear cost, nothing forbidden leaks.
    #[default]
    Window,
    /// Release nothing until the whole answer was checked.
    Buffer,
    /// No output checks on streams (headers, metrics and audit say so).
    Passthrough,
}

/// The `steer` settings of the root policy.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SteerSpec {
    /// System message prepended to requests a `steer` rule matched.
    pub system_message: String,
}

/// Header of a category file: what the category is and how it maps to
/// published taxonomies.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategorySpec {
    /// Identifier used in rules, decisions and metrics (`indiscriminate_weapons`).
    pub id: String,
    /// MLCommons / Llama Guard hazard code (`S9`).
    #[serde(default)]
    pub mlcommons: Option<String>,
    /// OpenAI moderation category names this maps to.
    #[serde(default)]
    pub openai: Vec<String>,
    /// Free text for readers.
    #[serde(default)]
    pub description: Option<String>,
    /// Switched on by default?
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Default action of the category's rules, per direction.
    #[serde(default)]
    pub action: Option<ActionSpec>,
    /// Refusal text for this category.
    #[serde(default)]
    pub message: Option<String>,
    /// Shadow mode for the whole category.
    #[serde(default)]
    pub monitor: bool,
}

/// Root-policy override of a category.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CategoryOverride {
    /// Switch the category on or off.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Replace the category's action.
    #[serde(default)]
    pub action: Option<ActionSpec>,
    /// Replace the category's refusal text.
    #[serde(default)]
    pub message: Option<String>,
    /// Put the category in shadow mode.
    #[serde(default)]
    pub monitor: Option<bool>,
}

/// An action for both directions, or one per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ActionSpec {
    /// `action: block`
    Both(Action),
    /// `action: {input: steer, output: block}`
    PerDirection(PerDirectionAction),
}

/// The per-direction form of [`ActionSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PerDirectionAction {
    /// Action on requests.
    #[serde(default)]
    pub input: Option<Action>,
    /// Action on model answers.
    #[serde(default)]
    pub output: Option<Action>,
}

impl ActionSpec {
    /// The action for one direction, if this spec sets one.
    pub fn for_direction(&self, direction: Direction) -> Option<Action> {
        match (self, direction) {
            (ActionSpec::Both(a), _) => Some(*a),
            (ActionSpec::PerDirection(p), Direction::Input) => p.input,
            (ActionSpec::PerDirection(p), Direction::Output) => p.output,
        }
    }
}

/// What happens when a rule fires. Ordered by strength: the strongest action
/// of all findings is the decision.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Record only.
    Flag,
    /// Replace the matched span with `[REDACTED:<rule id>]`.
    Redact,
    /// Forward with a safety system message, then verify the answer declines.
    Steer,
    /// Refuse (input: the model is never called; output: the answer is replaced).
    Block,
}

impl Action {
    /// Lower-case name as used in YAML, headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Flag => "flag",
            Action::Redact => "redact",
            Action::Steer => "steer",
            Action::Block => "block",
        }
    }
}

/// Which side of the model a text is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Everything sent to the model.
    Input,
    /// Everything the model answered.
    Output,
}

impl Direction {
    /// Who writes a text of this direction when nobody says: the user writes
    /// requests, the assistant writes answers.
    pub fn default_role(self) -> Role {
        match self {
            Direction::Input => Role::User,
            Direction::Output => Role::Assistant,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Input => "input",
            Direction::Output => "output",
        }
    }
}

/// Which directions a rule applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AppliesTo {
    /// Requests only (default).
    #[default]
    Input,
    /// Answers only.
    Output,
    /// Both.
    Both,
}

impl AppliesTo {
    /// Whether a rule with this setting sees texts of `direction`.
    pub fn includes(self, direction: Direction) -> bool {
        matches!(
            (self, direction),
            (AppliesTo::Both, _)
                | (AppliesTo::Input, Direction::Input)
                | (AppliesTo::Output, Direction::Output)
        )
    }
}

/// Who wrote a piece of text the model reads. Rules can be limited to roles,
/// because injections inside tool results are phrased differently from a
/// user's own jailbreak.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System prompt.
    System,
    /// Developer message (newer OpenAI models).
    Developer,
    /// The end user (also legacy `prompt` and embeddings `input`).
    User,
    /// Assistant history on input; the model's answer on output.
    Assistant,
    /// Tool / function results: documents the model reads.
    Tool,
    /// Tool definitions sent in `tools` (descriptions can carry injections).
    ToolDefinition,
}

impl Role {
    /// Every role, in declaration order.
    pub const ALL: [Role; 6] = [
        Role::System,
        Role::Developer,
        Role::User,
        Role::Assistant,
        Role::Tool,
        Role::ToolDefinition,
    ];

    /// The role with this lower-case name (`system`, `tool_definition`, ...).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == name)
    }

    /// Lower-case name as in the OpenAI API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::ToolDefinition => "tool_definition",
        }
    }
}

/// Which textual form of a text a matcher runs on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Form {
    /// The text as sent (keywords still match case-insensitively).
    Raw,
    /// NFKC, lower case, invisible characters removed, homoglyphs folded, spaces collapsed.
    Normalized,
    /// `normalized` plus leetspeak folding, rejoined split letters and squeezed repeats.
    Deobfuscated,
}

impl Form {
    /// Name as written in policy files (`raw`, `normalized`, `deobfuscated`).
    pub fn as_str(self) -> &'static str {
        match self {
            Form::Raw => "raw",
            Form::Normalized => "normalized",
            Form::Deobfuscated => "deobfuscated",
        }
    }
}

/// Severity, for operators' dashboards.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational.
    Low,
    /// Default.
    #[default]
    Medium,
    /// Likely abuse.
    High,
    /// Certain abuse or data loss.
    Critical,
}

/// Post-match checks that weed out look-alikes (a 16-digit number is not a
/// card unless its Luhn checksum holds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Validator {
    /// Payment card numbers.
    Luhn,
    /// International bank account numbers (mod-97).
    Iban,
}

/// Kinds of obfuscation that are themselves evidence of an attack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ObfuscationSign {
    /// Zero-width and other invisible characters.
    Invisible,
    /// Unicode tag characters (ASCII smuggling).
    UnicodeTags,
    /// Bidirectional control characters.
    BidiControls,
    /// Letters from other scripts mixed into Latin words.
    Homoglyphs,
    /// Digits and symbols standing for letters.
    Leet,
    /// Words spelled with separators between letters.
    SplitLetters,
    /// Latin words spelled partly in kana or runes (mixed-script jailbreak generators).
    MixedScripts,
}

/// `decoded:` on a rule: a boolean, or `only`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "`true`, `false` or `only`")]
pub enum DecodedSpec {
    /// `true`: plain text and decoded payloads; `false`: plain text only.
    Flag(bool),
    /// `only`: decoded payloads only.
    Only(OnlyDecoded),
}

/// The keyword `only` of [`DecodedSpec`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnlyDecoded {
    /// Decoded payloads only.
    Only,
}

/// Encodings Palisade undoes before rescanning a payload, as named in
/// findings (`decoded: "base64>rot13"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PayloadEncoding {
    /// RFC 4648 base64, standard or URL-safe.
    Base64,
    /// RFC 4648 base32.
    Base32,
    /// Hex bytes.
    Hex,
    /// 8-bit groups of 0/1 digits.
    Binary,
    /// URL percent-encoding.
    Url,
    /// Caesar shift by 13.
    Rot13,
    /// Text reversed, whole or word by word.
    Reversed,
    /// International Morse code.
    Morse,
    /// NATO phonetic alphabet.
    Nato,
    /// Unicode Braille cells.
    Braille,
    /// Caesar shifts other than 13.
    Caesar,
    /// Mirrored alphabet.
    Atbash,
    /// Decimal character codes.
    Decimal,
}

/// The learned classifier as a signal.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassifierSpec {
    /// Model file, relative to the policy file.
    pub model: String,
    /// Score (0..1) at or above which the signal matches.
    pub threshold: f32,
    /// Other thresholds for some roles (tool results read differently).
    #[serde(default)]
    pub role_thresholds: BTreeMap<Role, f32>,
}

/// The adversarial-suffix score as a signal: optimised gibberish (GCG and
/// similar attacks) appended to a fluent request, found by its shape
/// rather than by its words, so it carries over to suffixes never seen.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AdversarialSuffixSpec {
    /// Score at or above which the signal matches: ordinary text scores
    /// below 3, a request with a GCG-style suffix usually 3.5 or more.
    pub threshold: f32,
}

/// One piece of evidence. A rule fires when the weights of its matched
/// signals reach the rule's threshold.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignalSpec {
    /// Label shown in `policy test` output.
    #[serde(default)]
    pub name: Option<String>,
    /// Takes the matchers (keywords, regex, forms and the rest) of the
    /// policy's shared signal of this name (top-level `signals:` of any
    /// policy file); `name`, `weight` and `required` given beside it
    /// override the shared signal's own.
    #[serde(default, rename = "use")]
    pub use_signal: Option<String>,
    /// Literal phrases (case-insensitive), compiled into one automaton.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Regular expressions (Rust `regex` syntax).
    #[serde(default)]
    pub regex: Vec<String>,
    /// Keywords must start and end at word boundaries (default true).
    #[serde(default)]
    pub whole_word: Option<bool>,
    /// Forms to match on (default: the rule's forms).
    #[serde(default)]
    pub forms: Option<Vec<Form>>,
    /// The learned classifier.
    #[serde(default)]
    pub classifier: Option<ClassifierSpec>,
    /// The adversarial-suffix score (optimised gibberish after a request).
    #[serde(default)]
    pub adversarial_suffix: Option<AdversarialSuffixSpec>,
    /// Obfuscation signs that count as a match.
    #[serde(default)]
    pub obfuscation: Vec<ObfuscationSign>,
    /// Checksum applied to each regex match.
    #[serde(default)]
    pub validate: Option<Validator>,
    /// Counts a hit only where a hit of a shared signal lies close by, so a
    /// counterweight names the frame it takes back instead of repeating
    /// the frame's patterns around its own ("a real blast next to a bath
    /// bomb" is the blast list `near` the everyday-bomb frame).
    #[serde(default)]
    pub near: Option<NearSpec>,
    /// Contribution to the rule's score; negative for context that makes the
    /// request look legitimate.
    #[serde(default)]
    pub weight: Option<f32>,
    /// The rule cannot fire unless this signal matched.
    #[serde(default)]
    pub required: bool,
    /// Accented Latin letters in `keywords` and `regex` also match without
    /// their accents ("cómo" finds "como"), for words people often type
    /// unaccented. Off by default: unaccented spellings can be other words
    /// ("como" is also "as").
    #[serde(default)]
    pub accents_optional: bool,
}

/// Where a signal's hits must lie to count (`near:` on a signal).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NearSpec {
    /// A shared signal (top-level `signals:` of any policy file) with
    /// keywords or regex, or a list of them (a hit of any counts).
    pub signal: SignalNames,
    /// Most bytes between the end of one hit and the start of the other,
    /// in either order; overlapping hits are 0 bytes apart.
    pub within: usize,
}

/// One shared signal's name or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged, expecting = "a shared signal's name or a list of names")]
pub enum SignalNames {
    /// One name.
    One(String),
    /// Several names.
    Many(Vec<String>),
}

impl SignalNames {
    /// The names, in order.
    pub fn names(&self) -> &[String] {
        match self {
            SignalNames::One(name) => std::slice::from_ref(name),
            SignalNames::Many(names) => names,
        }
    }
}

impl Default for SignalNames {
    fn default() -> Self {
        SignalNames::Many(Vec::new())
    }
}

/// Texts that a rule must block and must allow; run by `palisade policy test`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Examples {
    /// Each must make the rule fire.
    #[serde(default)]
    pub block: Vec<String>,
    /// None may make the rule fire.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// One rule.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Unique id, shown in headers, decisions and `[REDACTED:<id>]`.
    pub id: String,
    /// What the rule catches, for readers.
    #[serde(default)]
    pub description: Option<String>,
    /// Category (inherited from a category file).
    #[serde(default)]
    pub category: Option<String>,
    /// Switch the rule off without deleting it.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Directions the rule sees (default input).
    #[serde(default)]
    pub applies_to: Option<AppliesTo>,
    /// Only texts written by these roles (default all).
    #[serde(default)]
    pub roles: Option<Vec<Role>>,
    /// Forms the rule's matchers run on (default `[normalized]`).
    #[serde(default)]
    pub forms: Option<Vec<Form>>,
    /// Shorthand for a single signal: literal phrases.
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Shorthand for a single signal: regular expressions.
    #[serde(default)]
    pub regex: Vec<String>,
    /// Shorthand: whole-word keywords (default true).
    #[serde(default)]
    pub whole_word: Option<bool>,
    /// Shorthand: classifier signal.
    #[serde(default)]
    pub classifier: Option<ClassifierSpec>,
    /// Shorthand: adversarial-suffix signal.
    #[serde(default)]
    pub adversarial_suffix: Option<AdversarialSuffixSpec>,
    /// Shorthand: obfuscation signs.
    #[serde(default)]
    pub obfuscation: Vec<ObfuscationSign>,
    /// Shorthand: checksum on regex matches.
    #[serde(default)]
    pub validate: Option<Validator>,
    /// Weighted signals combined into a score.
    #[serde(default)]
    pub signals: Vec<SignalSpec>,
    /// Score at which the rule fires (default 1.0).
    #[serde(default)]
    pub threshold: Option<f32>,
    /// Positive signals must fall within this many bytes of each other.
    #[serde(default)]
    pub window: Option<usize>,
    /// Whether the rule also reads decoded payloads: `true` (default),
    /// `false`, or `only` (the rule reads nothing but decoded payloads, for
    /// evidence that only hidden text carries, such as an instruction
    /// smuggled in base64).
    #[serde(default)]
    pub decoded: Option<DecodedSpec>,
    /// Read only payloads whose decoding chain includes one of these
    /// encodings (default: all). Lets a rule ignore URL percent-encoding,
    /// which ordinary links are full of.
    #[serde(default)]
    pub encodings: Vec<PayloadEncoding>,
    /// What to do when it fires (default: the category's, else block).
    #[serde(default)]
    pub action: Option<ActionSpec>,
    /// Dashboard severity.
    #[serde(default)]
    pub severity: Severity,
    /// Refusal text for this rule.
    #[serde(default)]
    pub message: Option<String>,
    /// Shadow mode: record and count, never enforce.
    #[serde(default)]
    pub monitor: Option<bool>,
    /// Cases run by `palisade policy test`.
    #[serde(default)]
    pub examples: Option<Examples>,
}

fn yes() -> bool {
    true
}
fn default_depth() -> u8 {
    3
}
fn default_decode_bytes() -> usize {
    64 * 1024
}

impl Default for DecodeSpec {
    fn default() -> Self {
        Self {
            enabled: true,
            max_depth: default_depth(),
            max_output_bytes: default_decode_bytes(),
        }
    }
}
