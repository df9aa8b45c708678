//! Why a rule fired or did not: every signal of a rule with what it matched
//! in one text, for policy authors (`palisade scan --explain`).
//!
//! A decision names the rules that fired and their scores; to change a rule
//! an author needs to know which of its signals matched where, and which
//! mitigating signal did or did not count. Nothing here is on the request
//! path: it searches every pattern of the policy, with none of the pruning
//! [`super::evaluate`] does, and scores each rule the way it does.

use serde::Serialize;

use super::{Evidence, collect_every_hit, score};
use crate::detect::normalize::normalize;
use crate::policy::{CompiledPolicy, CompiledRule, CompiledSignal, Direction, Role, SignalSource};

/// Most matched snippets shown per signal.
const MAX_SHOWN_MATCHES: usize = 5;

/// Longest snippet shown for one match, in characters.
const MAX_SNIPPET_CHARS: usize = 80;

/// One rule's verdict on a text, signal by signal.
#[derive(Debug, Clone, Serialize)]
pub struct RuleExplanation {
    /// The rule's id.
    pub rule: String,
    /// Whether it reached its threshold.
    pub fired: bool,
    /// Its score where it fired; `None` where it did not.
    pub score: Option<f32>,
    /// The score it needs.
    pub threshold: f32,
    /// The window, in bytes, its positive evidence must fall within, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window: Option<usize>,
    /// Each of its signals, in the order the policy lists them.
    pub signals: Vec<SignalExplanation>,
}

/// One signal of a rule and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct SignalExplanation {
    /// Its name in the policy, or its position and kind when unnamed.
    pub name: String,
    /// What it adds to the score when present (negative: mitigating).
    pub weight: f32,
    /// The rule cannot fire without it.
    pub required: bool,
    /// Whether it is present in the text.
    pub matched: bool,
    /// The text it matched (at most a few snippets), or its score for a
    /// classifier or adversarial-suffix signal.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub matches: Vec<String>,
}

/// Explains, for `text` read in `direction` from `role`, every rule that
/// fires and every rule `wanted` names, each signal with what it matched.
/// Payloads decoded from the text (base64 and the like) are not explained:
/// the decision itself says which rules fired inside them.
pub fn explain(
    policy: &CompiledPolicy,
    direction: Direction,
    role: Role,
    text: &str,
    wanted: impl Fn(&str) -> bool,
) -> Vec<RuleExplanation> {
    let normalized = normalize(text);
    let hits = collect_every_hit(policy, direction, text, &normalized);
    let mut evidence = Evidence::new(policy, hits, &normalized, role, text);
    let mut out = Vec::new();
    for rule in policy
        .rules
        .iter()
        .filter(|r| r.reads_plain() && r.sees(direction, role))
    {
        let outcome = score::score_rule(policy, rule, &mut evidence);
        if outcome.is_none() && !wanted(&rule.id) {
            continue;
        }
        out.push(RuleExplanation {
            rule: rule.id.to_string(),
            fired: outcome.is_some(),
            score: outcome.map(|o| o.score),
            threshold: rule.threshold,
            window: rule.window,
            signals: explain_signals(policy, rule, &mut evidence, text),
        });
    }
    out
}

fn explain_signals(
    policy: &CompiledPolicy,
    rule: &CompiledRule,
    evidence: &mut Evidence<'_>,
    text: &str,
) -> Vec<SignalExplanation> {
    rule.signals
        .iter()
        .enumerate()
        .filter_map(|(position, id)| {
            let signal = policy.signal(*id)?;
            let matches = signal_matches(policy, signal, evidence, text);
            Some(SignalExplanation {
                name: signal_name(signal, position),
                weight: signal.weight,
                required: signal.required,
                matched: matches.is_some(),
                matches: matches.unwrap_or_default(),
            })
        })
        .collect()
}

/// What `signal` found: snippets of its hits, a score at or above its
/// threshold, or the obfuscation it looks for; `None` if it is absent.
fn signal_matches(
    policy: &CompiledPolicy,
    signal: &CompiledSignal,
    evidence: &mut Evidence<'_>,
    text: &str,
) -> Option<Vec<String>> {
    match &signal.source {
        SignalSource::Matches {
            hits_from, near, ..
        } => {
            // Forms that read the same text give the same hit once each.
            let mut ranges = score::signal_ranges(evidence, *hits_from, near.as_ref());
            ranges.dedup();
            (!ranges.is_empty()).then(|| {
                ranges
                    .into_iter()
                    .take(MAX_SHOWN_MATCHES)
                    .map(|range| snippet(text.get(range).unwrap_or("")))
                    .collect()
            })
        }
        SignalSource::Classifier {
            model,
            threshold,
            role_thresholds,
        } => {
            let threshold = score::classifier_threshold(role_thresholds, evidence.role, *threshold);
            let score = evidence.classifier_score(policy, *model);
            (score >= threshold).then(|| vec![format!("score {score:.3} >= {threshold}")])
        }
        SignalSource::AdversarialSuffix { threshold } => {
            let score = evidence.suffix_score();
            (score >= *threshold).then(|| vec![format!("score {score:.3} >= {threshold}")])
        }
        SignalSource::Obfuscation(signs) => signs
            .iter()
            .any(|s| score::sign_present(&evidence.normalized.signs, *s))
            .then(|| vec![format!("{:?}", evidence.normalized.signs)]),
    }
}

/// The signal's name, or `#N (kind)` for an unnamed one.
fn signal_name(signal: &CompiledSignal, position: usize) -> String {
    if let Some(name) = &signal.name {
        return name.clone();
    }
    let kind = match signal.source {
        SignalSource::Matches { .. } => "keywords or regex",
        SignalSource::Classifier { .. } => "classifier",
        SignalSource::AdversarialSuffix { .. } => "adversarial suffix",
        SignalSource::Obfuscation(_) => "obfuscation",
    };
    format!("#{} ({kind})", position + 1)
}

/// `matched`, cut to [`MAX_SNIPPET_CHARS`] characters.
fn snippet(matched: &str) -> String {
    let mut chars = matched.chars();
    let mut out: String = chars.by_ref().take(MAX_SNIPPET_CHARS).collect();
    if chars.next().is_some() {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::testing::compile_yaml;

    fn policy() -> CompiledPolicy {
        compile_yaml(
            r#"
version: 1
name: explain
rules:
  - id: thermite
    threshold: 3
    signals:
      - {name: amount, regex: ['\b\d+ ?g\b'], required: true}
      - {name: object, regex: ['\bthermite\b'], weight: 2}
      - {name: welding, keywords: [welding], weight: -2}
      - {keywords: [how to]}
    action: block
  - id: unrelated
    signals:
      - {regex: ['\bsecret\b']}
    action: block
  - id: inside-payloads-only
    decoded: only
    keywords: [thermite]
    action: block
"#,
        )
    }

    fn signal<'e>(e: &'e RuleExplanation, name: &str) -> &'e SignalExplanation {
        e.signals
            .iter()
            .find(|s| s.name == name)
            .expect("signal listed")
    }

    /// A rule that fires is listed with the text each signal matched and
    /// its score; an unnamed signal gets its position.
    #[test]
    fn a_fired_rule_shows_what_each_signal_matched() {
        let p = policy();
        let out = explain(
            &p,
            Direction::Input,
            Role::User,
            "how to burn 20 g thermite",
            |_| false,
        );
        assert_eq!(
            out.len(),
            1,
            "only the rule that fired on the text itself: {out:?}"
        );
        let e = &out[0];
        assert!(e.fired);
        assert_eq!(e.score, Some(4.0));
        assert_eq!(signal(e, "amount").matches, ["20 g"]);
        assert_eq!(signal(e, "object").matches, ["thermite"]);
        assert!(!signal(e, "welding").matched);
        assert_eq!(signal(e, "#4 (keywords or regex)").matches, ["how to"]);
    }

    /// A mitigating signal that kept a rule below its threshold shows up
    /// when the rule is asked for, and a rule that fires is not hidden by
    /// the pruning the engine does on the request path.
    #[test]
    fn an_asked_for_rule_shows_the_signal_that_held_it_back() {
        let p = policy();
        let text = "how to cut 20 g thermite welding rods";
        let out = explain(&p, Direction::Input, Role::User, text, |id| {
            id == "thermite"
        });
        let e = out.first().expect("asked for");
        assert!(!e.fired);
        assert_eq!(e.score, None);
        assert_eq!(signal(e, "welding").matches, ["welding"]);
        assert!(signal(e, "welding").weight < 0.0);
        let decision = crate::engine::evaluate(
            &p,
            Direction::Input,
            &[crate::engine::Segment::new(Role::User, "text", text)],
        );
        assert!(decision.findings.is_empty(), "explain agrees with evaluate");
    }
}
