//! Turns loaded policy files into a [`CompiledPolicy`]: validation (a named
//! pass with one error per mistake) and matcher construction. Runs once per
//! load or reload, never per request.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::PolicyError;
use super::compiled::{
    CompiledCategory, CompiledPolicy, CompiledRule, CompiledSignal, DecodedScope,
    DirectionMatchers, FormMatchers, LeakSettings, Near, SignalSource, StreamSettings,
};
use super::load::{LoadedFile, line_of_rule};
use super::model::{
    Action, ActionSpec, AppliesTo, CategorySpec, DecodedSpec, Direction, Form, NearSpec,
    OnlyDecoded, PayloadEncoding, Role, RuleSpec, SignalSpec, Validator,
};
use crate::detect::accents::without_accents;
use crate::detect::classifier::Model;
use crate::detect::decode::{DecodeLimits, Encoding};
use crate::detect::keywords::{KeywordMatcher, KeywordTarget};
use crate::detect::normalize::normalize;
use crate::detect::patterns::{PatternMatcher, accent_optional_pattern, check_pattern};

const DEFAULT_REFUSAL: &str = "I can't help with that request.";
const DEFAULT_STEER: &str = "You are a careful assistant. Decline requests for harmful, dangerous or hateful content, \
and do not take sides or rank religions, ethnicities, nationalities, genders or political groups; \
instead explain that views differ and offer balanced information.";

/// Category settings collected before rules are compiled.
struct CategoryState {
    spec: Option<CategorySpec>,
    enabled: bool,
    monitor: bool,
    forced_action: Option<ActionSpec>,
    message: Option<String>,
}

/// Pattern tables being filled while signals are compiled.
#[derive(Default)]
struct PatternTables {
    keywords: BTreeMap<Form, Vec<(String, KeywordTarget)>>,
    regexes: BTreeMap<Form, Vec<(String, u32)>>,
}

impl PatternTables {
    /// The entries some rule that sees `direction` needs: those of signals
    /// whose hits (their own or, through `hits_from`, another signal's)
    /// belong to such a rule.
    fn seen_in(
        &self,
        direction: Direction,
        signals: &[CompiledSignal],
        rules: &[CompiledRule],
    ) -> PatternTables {
        let needed: HashSet<u32> = signals
            .iter()
            .filter(|s| {
                rules
                    .get(s.rule as usize)
                    .is_some_and(|r| r.applies_to.includes(direction))
            })
            .flat_map(|s| match &s.source {
                SignalSource::Matches {
                    hits_from, near, ..
                } => std::iter::once(*hits_from)
                    .chain(near.iter().flat_map(|n| n.hits_from.iter().copied()))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        PatternTables {
            keywords: self
                .keywords
                .iter()
                .map(|(form, entries)| {
                    let kept = entries.iter().filter(|(_, t)| needed.contains(&t.signal));
                    (*form, kept.cloned().collect())
                })
                .collect(),
            regexes: self
                .regexes
                .iter()
                .map(|(form, entries)| {
                    let kept = entries.iter().filter(|(_, signal)| needed.contains(signal));
                    (*form, kept.cloned().collect())
                })
                .collect(),
        }
    }
}

/// Compiles loaded files; the first file is the root.
pub fn compile(files: &[LoadedFile]) -> Result<CompiledPolicy, PolicyError> {
    let Some(root) = files.first() else {
        return Err(PolicyError::Invalid {
            file: PathBuf::from("<none>"),
            rule: None,
            message: "no policy files given".into(),
        });
    };
    let categories = collect_categories(files)?;
    let shared = SharedSignals::collect(files)?;
    let mut builder = Builder {
        shared,
        tables: PatternTables::default(),
        signals: Vec::new(),
        rules: Vec::new(),
        classifiers: Vec::new(),
        model_index: HashMap::new(),
        pattern_owners: HashMap::new(),
        checked_patterns: HashSet::new(),
    };
    let mut seen_ids = HashSet::new();
    for file in files {
        let file_category = file.file.category.as_ref().map(|c| c.id.clone());
        for spec in &file.file.rules {
            if !seen_ids.insert(spec.id.clone()) {
                return Err(invalid(
                    file,
                    Some(&spec.id),
                    "duplicate rule id (ids must be unique across all included files)",
                ));
            }
            let category = spec.category.clone().or_else(|| file_category.clone());
            let state = category.as_ref().and_then(|c| categories.get(c));
            if !spec.enabled || state.is_some_and(|s| !s.enabled) {
                continue;
            }
            builder.add_rule(file, spec, category, state, root.file.monitor)?;
        }
    }
    let Builder {
        tables,
        signals,
        mut rules,
        classifiers,
        model_index,
        ..
    } = builder;
    let trusted_roles = trusted_roles(root);
    for rule in &mut rules {
        if rule.roles.is_none() && matches!(rule.input_action, Action::Block | Action::Steer) {
            rule.trusted_skipped = trusted_roles.clone();
        }
    }
    let mut model_files: Vec<PathBuf> = model_index.into_keys().collect();
    model_files.sort();
    let longest_keyword = tables
        .keywords
        .values()
        .flatten()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let matchers = DirectionMatchers {
        input: build_matchers(
            tables.seen_in(Direction::Input, &signals, &rules),
            &root.path,
        )?,
        output: build_matchers(
            tables.seen_in(Direction::Output, &signals, &rules),
            &root.path,
        )?,
    };
    let root_spec = &root.file;
    Ok(CompiledPolicy {
        name: root_spec.name.clone().unwrap_or_else(|| stem(&root.path)),
        refusal_mode: root_spec
            .refusal
            .as_ref()
            .map(|r| r.mode)
            .unwrap_or_default(),
        refusal_message: root_spec
            .refusal
            .as_ref()
            .and_then(|r| r.message.clone())
            .unwrap_or_else(|| DEFAULT_REFUSAL.to_string()),
        steer_message: root_spec
            .steer
            .as_ref()
            .map(|s| s.system_message.clone())
            .unwrap_or_else(|| DEFAULT_STEER.to_string()),
        decode: decode_limits(root_spec.decode.clone().unwrap_or_default()),
        stream: stream_settings(
            root,
            root_spec.stream.clone().unwrap_or_default(),
            &rules,
            &longest_keyword,
        )?,
        leak: root_spec
            .leak
            .clone()
            .map(|l| LeakSettings {
                canary: l.canary,
                verbatim_words: l.verbatim_words,
                message: l.message,
            })
            .unwrap_or_default(),
        trusted_roles,
        rules,
        near_only_frames: super::compiled::near_only_frames(&signals),
        signals,
        categories: categories
            .into_iter()
            .map(|(id, s)| {
                let spec = s.spec.as_ref();
                let c = CompiledCategory {
                    id: id.clone(),
                    mlcommons: spec.and_then(|c| c.mlcommons.clone()),
                    openai: spec.map(|c| c.openai.clone()).unwrap_or_default(),
                    message: s.message.clone(),
                };
                (id, c)
            })
            .collect(),
        matchers,
        classifiers,
        files: files.iter().map(|f| f.path.clone()).collect(),
        model_files,
    })
}

/// The root file's `trusted_roles` (like the other root settings, ignored
/// in included files: `shadow.yaml` includes `default.yaml`).
fn trusted_roles(root: &LoadedFile) -> Vec<Role> {
    let mut roles = root.file.trusted_roles.clone();
    roles.sort();
    roles.dedup();
    roles
}

fn decode_limits(spec: super::model::DecodeSpec) -> Option<DecodeLimits> {
    spec.enabled.then(|| DecodeLimits {
        max_depth: spec.max_depth,
        max_output_bytes: spec.max_output_bytes,
        ..DecodeLimits::default()
    })
}

/// Smallest default hold-back: enough right context for the phrase-level
/// rules without delaying the first token noticeably.
const DEFAULT_HOLDBACK_CHARS: usize = 256;
const DEFAULT_STREAM_BUFFER: usize = 1 << 20;

/// Resolves `stream:`; a hold-back shorter than a keyword could let that
/// keyword through split across chunks, so it is refused.
fn stream_settings(
    root: &LoadedFile,
    spec: super::model::StreamSpec,
    rules: &[CompiledRule],
    longest_keyword: &usize,
) -> Result<StreamSettings, PolicyError> {
    let longest_window = rules.iter().filter_map(|r| r.window).max().unwrap_or(0);
    let needed = (*longest_keyword).max(1);
    let holdback_chars = match spec.holdback_chars {
        Some(n) if n < needed => {
            return Err(invalid(
                root,
                None,
                format!(
                    "stream.holdback_chars is {n}, shorter than the longest keyword ({needed} characters): \
                     a keyword split across chunks could reach the client"
                ),
            ));
        }
        Some(n) => n,
        None => DEFAULT_HOLDBACK_CHARS.max(longest_window).max(needed),
    };
    Ok(StreamSettings {
        mode: spec.mode,
        holdback_chars,
        buffer_max_bytes: spec
            .buffer_max_bytes
            .unwrap_or(DEFAULT_STREAM_BUFFER)
            .max(1),
    })
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("policy")
        .to_string()
}

/// The rule's `decoded:` and `encodings:` read together.
fn decoded_scope(file: &LoadedFile, spec: &RuleSpec) -> Result<DecodedScope, PolicyError> {
    let scope = match spec.decoded {
        None | Some(DecodedSpec::Flag(true)) => DecodedScope::PlainAndPayloads,
        Some(DecodedSpec::Flag(false)) => DecodedScope::PlainOnly,
        Some(DecodedSpec::Only(OnlyDecoded::Only)) => DecodedScope::PayloadsOnly,
    };
    if scope == DecodedScope::PlainOnly && !spec.encodings.is_empty() {
        return Err(invalid(
            file,
            Some(&spec.id),
            "`encodings` chooses decoded payloads, but `decoded: false` reads none",
        ));
    }
    Ok(scope)
}

fn payload_encoding(e: PayloadEncoding) -> Encoding {
    match e {
        PayloadEncoding::Base64 => Encoding::Base64,
        PayloadEncoding::Base32 => Encoding::Base32,
        PayloadEncoding::Hex => Encoding::Hex,
        PayloadEncoding::Binary => Encoding::Binary,
        PayloadEncoding::Url => Encoding::Url,
        PayloadEncoding::Rot13 => Encoding::Rot13,
        PayloadEncoding::Reversed => Encoding::Reversed,
        PayloadEncoding::Morse => Encoding::Morse,
        PayloadEncoding::Nato => Encoding::Nato,
        PayloadEncoding::Braille => Encoding::Braille,
        PayloadEncoding::Caesar => Encoding::Caesar,
        PayloadEncoding::Atbash => Encoding::Atbash,
        PayloadEncoding::Decimal => Encoding::Decimal,
    }
}

fn invalid(file: &LoadedFile, rule: Option<&str>, message: impl Into<String>) -> PolicyError {
    let line = rule.and_then(|r| line_of_rule(&file.source, r));
    let path = match line {
        Some(l) => PathBuf::from(format!("{}:{l}", file.path.display())),
        None => file.path.clone(),
    };
    PolicyError::Invalid {
        file: path,
        rule: rule.map(str::to_string),
        message: message.into(),
    }
}

fn collect_categories(
    files: &[LoadedFile],
) -> Result<BTreeMap<String, CategoryState>, PolicyError> {
    let mut out: BTreeMap<String, CategoryState> = BTreeMap::new();
    for file in files {
        if let Some(spec) = &file.file.category {
            if out.contains_key(&spec.id) {
                return Err(invalid(
                    file,
                    None,
                    format!("category `{}` is defined twice", spec.id),
                ));
            }
            let state = CategoryState {
                spec: Some(spec.clone()),
                enabled: spec.enabled,
                monitor: spec.monitor,
                forced_action: None,
                message: spec.message.clone(),
            };
            out.insert(spec.id.clone(), state);
        }
    }
    if let Some(root) = files.first() {
        for (id, over) in &root.file.categories {
            let Some(state) = out.get_mut(id) else {
                return Err(invalid(
                    root,
                    None,
                    format!("`categories.{id}`: no included file defines category `{id}`"),
                ));
            };
            if let Some(enabled) = over.enabled {
                state.enabled = enabled;
            }
            if over.action.is_some() {
                state.forced_action = over.action;
            }
            if let Some(monitor) = over.monitor {
                state.monitor = monitor;
            }
            if over.message.is_some() {
                state.message = over.message.clone();
            }
        }
    }
    Ok(out)
}

struct Builder {
    /// The policy's shared signals, which rules take with `use:`.
    shared: SharedSignals,
    tables: PatternTables,
    signals: Vec<CompiledSignal>,
    rules: Vec<CompiledRule>,
    classifiers: Vec<Arc<Model>>,
    model_index: HashMap<PathBuf, usize>,
    /// Pattern sets already compiled in, to the signal that owns their hits.
    pattern_owners: HashMap<PatternSetKey, u32>,
    /// Regexes (with their case option) already checked: most patterns are
    /// matched on several forms, and a pattern is checked once.
    checked_patterns: HashSet<(String, bool)>,
}

/// Everything that decides which hits a keyword/regex signal produces.
#[derive(PartialEq, Eq, Hash)]
struct PatternSetKey {
    forms: Vec<Form>,
    whole_word: bool,
    keywords: Vec<String>,
    regex: Vec<String>,
    validate: Option<Validator>,
    accents_optional: bool,
}

impl Builder {
    fn add_rule(
        &mut self,
        file: &LoadedFile,
        spec: &RuleSpec,
        category: Option<String>,
        state: Option<&CategoryState>,
        policy_monitor: bool,
    ) -> Result<(), PolicyError> {
        let rule_index = self.rules.len() as u32;
        let default_forms = spec.forms.clone().unwrap_or_else(|| vec![Form::Normalized]);
        let mut signal_specs = spec
            .signals
            .iter()
            .map(|signal| self.shared.resolve(file, spec, signal))
            .collect::<Result<Vec<_>, _>>()?;
        if has_shorthand(spec) {
            signal_specs.push(SignalSpec {
                name: None,
                use_signal: None,
                keywords: spec.keywords.clone(),
                regex: spec.regex.clone(),
                whole_word: spec.whole_word,
                forms: None,
                classifier: spec.classifier.clone(),
                adversarial_suffix: spec.adversarial_suffix.clone(),
                obfuscation: spec.obfuscation.clone(),
                validate: spec.validate,
                near: None,
                weight: None,
                required: false,
                accents_optional: false,
            });
        }
        if signal_specs.is_empty() {
            return Err(invalid(
                file,
                Some(&spec.id),
                "matches nothing: give it `keywords`, `regex`, `classifier`, `adversarial_suffix`, `obfuscation` or `signals`",
            ));
        }
        let threshold = spec.threshold.unwrap_or(1.0);
        let reachable: f32 = signal_specs
            .iter()
            .map(|s| s.weight.unwrap_or(1.0))
            .filter(|w| *w > 0.0)
            .sum();
        if threshold <= 0.0 || reachable + 1e-6 < threshold {
            return Err(invalid(
                file,
                Some(&spec.id),
                format!(
                    "can never fire: positive signal weights add up to {reachable}, below `threshold: {threshold}`"
                ),
            ));
        }
        let mut signal_ids = Vec::new();
        for signal in &signal_specs {
            let id = self.add_signal(file, spec, signal, rule_index, &default_forms)?;
            signal_ids.push(id);
        }
        let (input_action, output_action) = resolve_actions(spec, state);
        let applies_to = spec.applies_to.unwrap_or_default();
        if applies_to.includes(Direction::Output) && output_action == Action::Steer {
            return Err(invalid(
                file,
                Some(&spec.id),
                "`steer` only applies to input: set an output action such as `block`",
            ));
        }
        let positional = signal_specs
            .iter()
            .any(|s| !s.keywords.is_empty() || !s.regex.is_empty());
        if (input_action == Action::Redact || output_action == Action::Redact) && !positional {
            return Err(invalid(
                file,
                Some(&spec.id),
                "`redact` needs keywords or regex: a classifier, adversarial-suffix or obfuscation signal has no span to redact",
            ));
        }
        self.rules.push(CompiledRule {
            id: Arc::from(spec.id.as_str()),
            category: category.map(|c| Arc::from(c.as_str())),
            applies_to,
            roles: spec.roles.clone(),
            trusted_skipped: Vec::new(),
            signals: signal_ids,
            threshold,
            window: spec.window,
            decoded: decoded_scope(file, spec)?,
            encodings: spec
                .encodings
                .iter()
                .map(|e| payload_encoding(*e))
                .collect(),
            input_action,
            output_action,
            severity: spec.severity,
            message: spec
                .message
                .clone()
                .or_else(|| state.and_then(|s| s.message.clone())),
            monitor: policy_monitor
                || spec.monitor.unwrap_or(false)
                || state.is_some_and(|s| s.monitor),
            file: file.path.clone(),
        });
        Ok(())
    }

    fn add_signal(
        &mut self,
        file: &LoadedFile,
        rule: &RuleSpec,
        signal: &SignalSpec,
        rule_index: u32,
        default_forms: &[Form],
    ) -> Result<u32, PolicyError> {
        let near = match &signal.near {
            Some(spec) => {
                Some(self.add_near(file, rule, signal, spec, rule_index, default_forms)?)
            }
            None => None,
        };
        let id = self.signals.len() as u32;
        let kinds = [
            !signal.keywords.is_empty() || !signal.regex.is_empty(),
            signal.classifier.is_some(),
            signal.adversarial_suffix.is_some(),
            !signal.obfuscation.is_empty(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            let name = signal.name.as_deref().unwrap_or("(unnamed)");
            return Err(invalid(
                file,
                Some(&rule.id),
                format!(
                    "signal `{name}` must have exactly one of keywords/regex, classifier, adversarial_suffix, obfuscation"
                ),
            ));
        }
        let source = if let Some(spec) = &signal.classifier {
            let model = self.load_model(file, rule, &spec.model)?;
            if !(0.0..=1.0).contains(&spec.threshold) {
                return Err(invalid(
                    file,
                    Some(&rule.id),
                    "classifier threshold must be between 0 and 1",
                ));
            }
            SignalSource::Classifier {
                model,
                threshold: spec.threshold,
                role_thresholds: spec.role_thresholds.iter().map(|(r, t)| (*r, *t)).collect(),
            }
        } else if let Some(spec) = &signal.adversarial_suffix {
            if !spec.threshold.is_finite() || spec.threshold <= 0.0 {
                return Err(invalid(
                    file,
                    Some(&rule.id),
                    "adversarial_suffix threshold must be a positive number",
                ));
            }
            SignalSource::AdversarialSuffix {
                threshold: spec.threshold,
            }
        } else if !signal.obfuscation.is_empty() {
            SignalSource::Obfuscation(signal.obfuscation.clone())
        } else {
            let (forms, key) = pattern_set_key(file, rule, signal, default_forms)?;
            let hits_from = match self.pattern_owners.get(&key) {
                Some(owner) => *owner,
                None => {
                    self.add_patterns(file, rule, signal, id, &forms)?;
                    self.pattern_owners.insert(key, id);
                    id
                }
            };
            SignalSource::Matches {
                forms,
                validate: signal.validate,
                hits_from,
                near,
            }
        };
        self.signals.push(CompiledSignal {
            rule: rule_index,
            name: signal.name.clone(),
            weight: signal.weight.unwrap_or(1.0),
            required: signal.required,
            source,
        });
        Ok(id)
    }

    /// The frames a `near:` names: the shared signals' hits, matched once
    /// like any signal's.
    fn add_near(
        &mut self,
        file: &LoadedFile,
        rule: &RuleSpec,
        signal: &SignalSpec,
        spec: &NearSpec,
        rule_index: u32,
        default_forms: &[Form],
    ) -> Result<Near, PolicyError> {
        let name = signal.name.as_deref().unwrap_or("(unnamed)");
        if signal.keywords.is_empty() && signal.regex.is_empty() {
            return Err(invalid(
                file,
                Some(&rule.id),
                format!(
                    "signal `{name}`: `near` needs a signal with keywords or regex (only they have positions)"
                ),
            ));
        }
        if spec.signal.names().is_empty() {
            return Err(invalid(
                file,
                Some(&rule.id),
                format!("signal `{name}`: `near` names no signal"),
            ));
        }
        let mut hits_from = Vec::new();
        for frame in spec.signal.names() {
            hits_from.push(self.add_frame(file, rule, name, frame, rule_index, default_forms)?);
        }
        Ok(Near {
            hits_from,
            within: spec.within,
        })
    }

    /// The signal whose hits are those of the shared signal `frame`. A
    /// frame no other signal matches gets a signal of its own that owns
    /// its patterns; it is no signal of the rule (it adds no weight), only
    /// the source of the hits a `near` reads.
    fn add_frame(
        &mut self,
        file: &LoadedFile,
        rule: &RuleSpec,
        name: &str,
        frame_name: &str,
        rule_index: u32,
        default_forms: &[Form],
    ) -> Result<u32, PolicyError> {
        let Some(frame) = self.shared.spec(frame_name).cloned() else {
            return Err(invalid(
                file,
                Some(&rule.id),
                format!(
                    "signal `{name}`: `near` names `{frame_name}`, but the policy has no shared signal of that name (define it under a file's top-level `signals:`)"
                ),
            ));
        };
        let problem = if frame.keywords.is_empty() && frame.regex.is_empty() {
            Some("a shared signal without keywords or regex (only they have positions)")
        } else if frame.near.is_some() {
            Some("a shared signal with a `near` of its own (a frame is where its matches are)")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(invalid(
                file,
                Some(&rule.id),
                format!("signal `{name}`: `near` names `{frame_name}`, {problem}"),
            ));
        }
        let (forms, key) = pattern_set_key(file, rule, &frame, default_forms)?;
        if let Some(owner) = self.pattern_owners.get(&key) {
            return Ok(*owner);
        }
        let id = self.signals.len() as u32;
        self.add_patterns(file, rule, &frame, id, &forms)?;
        self.pattern_owners.insert(key, id);
        self.signals.push(CompiledSignal {
            rule: rule_index,
            name: Some(frame_name.to_string()),
            weight: 0.0,
            required: false,
            source: SignalSource::Matches {
                forms,
                validate: frame.validate,
                hits_from: id,
                near: None,
            },
        });
        Ok(id)
    }

    fn add_patterns(
        &mut self,
        file: &LoadedFile,
        rule: &RuleSpec,
        signal: &SignalSpec,
        id: u32,
        forms: &[Form],
    ) -> Result<(), PolicyError> {
        let whole_word = signal.whole_word.unwrap_or(true);
        // With `accents_optional`, each accented keyword is also listed
        // without its accents (the deobfuscated form strips them from keyword
        // and text alike, so only the normalised form needs it), unless the
        // signal lists that spelling itself.
        let listed_normalized: HashSet<String> = if signal.accents_optional {
            signal
                .keywords
                .iter()
                .map(|k| keyword_in_form(k, Form::Normalized))
                .collect()
        } else {
            HashSet::new()
        };
        for keyword in &signal.keywords {
            if keyword.trim().is_empty() {
                return Err(invalid(file, Some(&rule.id), "empty keyword"));
            }
            for form in forms {
                let text = keyword_in_form(keyword, *form);
                if text.is_empty() {
                    continue;
                }
                let plain = (signal.accents_optional && *form == Form::Normalized)
                    .then(|| without_accents(&text))
                    .flatten()
                    .filter(|plain| !listed_normalized.contains(plain));
                let target = KeywordTarget {
                    signal: id,
                    whole_word,
                };
                let list = self.tables.keywords.entry(*form).or_default();
                list.push((text, target));
                if let Some(plain) = plain {
                    list.push((plain, target));
                }
            }
        }
        for pattern in &signal.regex {
            // With `accents_optional`, accented letters become optional in
            // the case-folded forms (`ó` -> `[oó]`); rewritten once for all.
            let accent_optional = signal
                .accents_optional
                .then(|| accent_optional_pattern(pattern, true))
                .flatten();
            for form in forms {
                let case_insensitive = *form != Form::Raw;
                if self
                    .checked_patterns
                    .insert((pattern.clone(), case_insensitive))
                {
                    check_pattern(pattern, case_insensitive).map_err(|e| PolicyError::Regex {
                        file: file.path.clone(),
                        line: line_of_rule(&file.source, &rule.id),
                        rule: rule.id.clone(),
                        pattern: pattern.clone(),
                        message: e.to_string(),
                    })?;
                }
                let pattern = match (&accent_optional, case_insensitive) {
                    (Some(relaxed), true) => relaxed.clone(),
                    _ => pattern.clone(),
                };
                self.tables
                    .regexes
                    .entry(*form)
                    .or_default()
                    .push((pattern, id));
            }
        }
        Ok(())
    }

    fn load_model(
        &mut self,
        file: &LoadedFile,
        rule: &RuleSpec,
        model: &str,
    ) -> Result<usize, PolicyError> {
        let path = file.path.parent().unwrap_or(Path::new(".")).join(model);
        if let Some(index) = self.model_index.get(&path) {
            return Ok(*index);
        }
        let loaded = Model::load(&path).map_err(|e| PolicyError::Classifier {
            file: file.path.clone(),
            rule: rule.id.clone(),
            model: path.clone(),
            message: e.to_string(),
        })?;
        self.classifiers.push(Arc::new(loaded));
        let index = self.classifiers.len() - 1;
        self.model_index.insert(path, index);
        Ok(index)
    }
}

/// The shared signals of a policy (top-level `signals:` of its files), by
/// name, each with the file that defines it.
struct SharedSignals {
    by_name: HashMap<String, (PathBuf, SignalSpec)>,
}

impl SharedSignals {
    /// Collects every file's shared signals; a name defined twice, a
    /// shared signal that itself says `use:`, one without matchers and one
    /// with a classifier (whose model path is relative to its own file)
    /// are errors.
    fn collect(files: &[LoadedFile]) -> Result<Self, PolicyError> {
        let mut by_name: HashMap<String, (PathBuf, SignalSpec)> = HashMap::new();
        for file in files {
            for (name, signal) in &file.file.signals {
                let problem = if signal.use_signal.is_some() {
                    Some("a shared signal cannot itself `use:` another")
                } else if signal.classifier.is_some() {
                    Some(
                        "a shared signal cannot hold a classifier (its model path is relative to one file): give the classifier to each rule",
                    )
                } else if signal.keywords.is_empty()
                    && signal.regex.is_empty()
                    && signal.obfuscation.is_empty()
                    && signal.adversarial_suffix.is_none()
                {
                    Some(
                        "matches nothing: give it `keywords`, `regex`, `obfuscation` or `adversarial_suffix`",
                    )
                } else {
                    None
                };
                if let Some(problem) = problem {
                    return Err(invalid(
                        file,
                        None,
                        format!("shared signal `{name}`: {problem}"),
                    ));
                }
                if let Some((other, _)) = by_name.get(name) {
                    return Err(invalid(
                        file,
                        None,
                        format!(
                            "shared signal `{name}` is also defined in {} (names are unique across all included files)",
                            other.display()
                        ),
                    ));
                }
                by_name.insert(name.clone(), (file.path.clone(), signal.clone()));
            }
        }
        Ok(Self { by_name })
    }

    /// `signal` with a `use:` replaced by the shared signal it names, whose
    /// `name`, `weight` and `required` it may override; other signals as
    /// they are.
    fn resolve(
        &self,
        file: &LoadedFile,
        rule: &RuleSpec,
        signal: &SignalSpec,
    ) -> Result<SignalSpec, PolicyError> {
        let Some(name) = &signal.use_signal else {
            return Ok(signal.clone());
        };
        let has_own_matchers = !signal.keywords.is_empty()
            || !signal.regex.is_empty()
            || signal.whole_word.is_some()
            || signal.forms.is_some()
            || signal.classifier.is_some()
            || signal.adversarial_suffix.is_some()
            || !signal.obfuscation.is_empty()
            || signal.validate.is_some()
            || signal.accents_optional;
        if has_own_matchers {
            return Err(invalid(
                file,
                Some(&rule.id),
                format!(
                    "`use: {name}` takes the shared signal's matchers: beside it give only `name`, `weight`, `required` or `near`"
                ),
            ));
        }
        let Some((_, shared)) = self.by_name.get(name) else {
            let mut known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            known.sort_unstable();
            return Err(invalid(
                file,
                Some(&rule.id),
                format!(
                    "`use: {name}`: the policy has no shared signal of that name (define it under a file's top-level `signals:`; defined: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            ));
        };
        let mut out = shared.clone();
        out.name = signal
            .name
            .clone()
            .or_else(|| shared.name.clone())
            .or_else(|| Some(name.clone()));
        out.weight = signal.weight.or(shared.weight);
        out.required = signal.required || shared.required;
        out.near = signal.near.clone().or_else(|| shared.near.clone());
        Ok(out)
    }

    /// The shared signal called `name`.
    fn spec(&self, name: &str) -> Option<&SignalSpec> {
        self.by_name.get(name).map(|(_, spec)| spec)
    }
}

/// The forms a keyword/regex signal matches on (its own, else the
/// rule's) and the key under which signals with the same matchers share
/// one set of hits.
fn pattern_set_key(
    file: &LoadedFile,
    rule: &RuleSpec,
    signal: &SignalSpec,
    default_forms: &[Form],
) -> Result<(Vec<Form>, PatternSetKey), PolicyError> {
    let forms = signal
        .forms
        .clone()
        .unwrap_or_else(|| default_forms.to_vec());
    if forms.is_empty() {
        return Err(invalid(file, Some(&rule.id), "`forms` is empty"));
    }
    let key = PatternSetKey {
        forms: forms.clone(),
        whole_word: signal.whole_word.unwrap_or(true),
        keywords: signal.keywords.clone(),
        regex: signal.regex.clone(),
        validate: signal.validate,
        accents_optional: signal.accents_optional,
    };
    Ok((forms, key))
}

fn has_shorthand(spec: &RuleSpec) -> bool {
    !spec.keywords.is_empty()
        || !spec.regex.is_empty()
        || spec.classifier.is_some()
        || spec.adversarial_suffix.is_some()
        || !spec.obfuscation.is_empty()
}

/// Root category override beats the rule's own action, which beats the
/// category file's default; with none of them the rule blocks.
fn resolve_actions(spec: &RuleSpec, state: Option<&CategoryState>) -> (Action, Action) {
    let pick = |direction: Direction| {
        state
            .and_then(|s| s.forced_action)
            .and_then(|a| a.for_direction(direction))
            .or_else(|| spec.action.and_then(|a| a.for_direction(direction)))
            .or_else(|| {
                state
                    .and_then(|s| s.spec.as_ref())
                    .and_then(|c| c.action)
                    .and_then(|a| a.for_direction(direction))
            })
            .unwrap_or(Action::Block)
    };
    let input = pick(Direction::Input);
    let output = pick(Direction::Output);
    // `steer` is an input-side mode; its output side verifies with `block`.
    (
        input,
        if output == Action::Steer {
            Action::Block
        } else {
            output
        },
    )
}

/// A keyword goes through the same transformation as the text it is matched
/// against, so `Ignore` and `1gn0re` keywords behave like the text does.
fn keyword_in_form(keyword: &str, form: Form) -> String {
    match form {
        Form::Raw => keyword.to_string(),
        Form::Normalized => normalize(keyword).normalized.text.trim().to_string(),
        Form::Deobfuscated => normalize(keyword).deobfuscated.text.trim().to_string(),
    }
}

/// Compiles in `new`, before it serves, the position regexes that `old`
/// (the policy it replaces) had compiled on its traffic, so the first
/// requests after a reload do not pay for them; memory stays what the old
/// policy used. Returns how many were compiled.
pub fn warm_from(new: &CompiledPolicy, old: &CompiledPolicy) -> usize {
    [Direction::Input, Direction::Output]
        .into_iter()
        .flat_map(|direction| {
            let old = old.matchers.get(direction);
            new.matchers
                .get(direction)
                .iter()
                .filter_map(move |(form, m)| {
                    old.get(form).map(|o| m.patterns.warm_from(&o.patterns))
                })
        })
        .sum()
}

fn build_matchers(
    tables: PatternTables,
    root: &Path,
) -> Result<BTreeMap<Form, FormMatchers>, PolicyError> {
    let regex_error = |e: crate::detect::patterns::PatternSetError| PolicyError::Invalid {
        file: root.to_path_buf(),
        rule: None,
        message: format!("regex set: {e}"),
    };
    // The normalised and deobfuscated forms match case-insensitively and
    // mostly list the same patterns: one set serves both (see
    // `PatternMatcher::new_shared`), unless together they are over the size
    // limit, in which case each gets its own as before.
    let regexes_of = |form: Form| tables.regexes.get(&form).cloned().unwrap_or_default();
    let mut patterns: BTreeMap<Form, PatternMatcher> = BTreeMap::new();
    patterns.insert(
        Form::Raw,
        PatternMatcher::new(regexes_of(Form::Raw), false).map_err(regex_error)?,
    );
    let folded = [Form::Normalized, Form::Deobfuscated];
    match PatternMatcher::new_shared(folded.iter().map(|f| regexes_of(*f)).collect(), true) {
        Ok(matchers) => patterns.extend(folded.into_iter().zip(matchers)),
        Err(_) => {
            for form in folded {
                patterns.insert(
                    form,
                    PatternMatcher::new(regexes_of(form), true).map_err(regex_error)?,
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    for form in [Form::Raw, Form::Normalized, Form::Deobfuscated] {
        let keywords = tables.keywords.get(&form).cloned().unwrap_or_default();
        let patterns = patterns.remove(&form).unwrap_or_default();
        if keywords.is_empty() && patterns.is_empty() {
            continue;
        }
        let keywords = KeywordMatcher::new(keywords).map_err(|e| PolicyError::Invalid {
            file: root.to_path_buf(),
            rule: None,
            message: e.to_string(),
        })?;
        out.insert(form, FormMatchers { keywords, patterns });
    }
    Ok(out)
}

impl AppliesTo {
    /// Directions included, for iteration.
    pub fn directions(self) -> &'static [Direction] {
        match self {
            AppliesTo::Input => &[Direction::Input],
            AppliesTo::Output => &[Direction::Output],
            AppliesTo::Both => &[Direction::Input, Direction::Output],
        }
    }
}
