//! Rule scoring: weighted signals, required signals, and co-occurrence
//! windows ("a request form × a harmful objective × an object, close
//! together"), with negative context counted only near the evidence so it
//! cannot be prepended far away as a blanket exemption.

use std::ops::Range;

use super::Evidence;
use crate::detect::normalize::ObfuscationSigns;
use crate::policy::{CompiledPolicy, CompiledRule, Near, ObfuscationSign, Role, SignalSource};

/// A rule that reached its threshold.
pub(crate) struct Outcome {
    pub score: f32,
    pub span: Range<usize>,
    pub redact_spans: Vec<Range<usize>>,
}

/// A positional hit tagged with the rule-local signal index.
struct Event {
    local: usize,
    range: Range<usize>,
}

pub(crate) fn score_rule(
    policy: &CompiledPolicy,
    rule: &CompiledRule,
    evidence: &mut Evidence<'_>,
) -> Option<Outcome> {
    if !may_reach_threshold(policy, rule, evidence) {
        return None;
    }
    let n = rule.signals.len();
    let mut weights = vec![0.0f32; n];
    let mut required = vec![false; n];
    let mut nonpositional_matched = vec![false; n];
    let mut positives: Vec<Event> = Vec::new();
    let mut negatives: Vec<Event> = Vec::new();
    for (local, &signal_id) in rule.signals.iter().enumerate() {
        let signal = policy.signal(signal_id)?;
        weights[local] = signal.weight;
        required[local] = signal.required;
        match &signal.source {
            SignalSource::Matches {
                hits_from, near, ..
            } => {
                let target = if signal.weight >= 0.0 {
                    &mut positives
                } else {
                    &mut negatives
                };
                target.extend(
                    signal_ranges(evidence, *hits_from, near.as_ref())
                        .into_iter()
                        .map(|range| Event { local, range }),
                );
            }
            SignalSource::Classifier {
                model,
                threshold,
                role_thresholds,
            } => {
                let threshold = classifier_threshold(role_thresholds, evidence.role, *threshold);
                nonpositional_matched[local] =
                    evidence.classifier_score(policy, *model) >= threshold;
            }
            SignalSource::Obfuscation(signs) => {
                nonpositional_matched[local] = signs
                    .iter()
                    .any(|s| sign_present(&evidence.normalized.signs, *s));
            }
            SignalSource::AdversarialSuffix { threshold } => {
                nonpositional_matched[local] = evidence.suffix_score() >= *threshold;
            }
        }
    }
    if positives.is_empty() && !nonpositional_matched.iter().any(|m| *m) {
        return None;
    }
    positives.sort_by_key(|e| e.range.start);
    let base: f32 = (0..n)
        .filter(|i| nonpositional_matched[*i])
        .map(|i| weights[i])
        .sum();
    match rule.window {
        None => score_everywhere(
            rule,
            &weights,
            &required,
            &nonpositional_matched,
            &positives,
            &negatives,
            base,
        ),
        Some(window) => score_windowed(
            rule,
            window,
            &weights,
            &required,
            &nonpositional_matched,
            &positives,
            &negatives,
            base,
        ),
    }
}

/// The ranges of the hits a match signal counts: those of `hits_from`,
/// and with a `near`, only those within its reach of a frame hit.
pub(crate) fn signal_ranges(
    evidence: &Evidence<'_>,
    hits_from: u32,
    near: Option<&Near>,
) -> Vec<Range<usize>> {
    let hits = evidence.hits_of(hits_from);
    let Some(near) = near else {
        return hits.iter().map(|h| h.range.clone()).collect();
    };
    if hits.is_empty() {
        return Vec::new();
    }
    let frame: Vec<Range<usize>> = near
        .hits_from
        .iter()
        .flat_map(|f| evidence.hits_of(*f))
        .map(|h| h.range.clone())
        .collect();
    hits.iter()
        .map(|h| h.range.clone())
        .filter(|range| near.reaches(range, &frame))
        .collect()
}

/// The cheap first pass over a rule: can it reach its threshold at all,
/// counting every classifier and adversarial-suffix signal as if it matched? Most rules have no
/// evidence in most texts, so this skips them before any allocation and
/// before a classifier is run (the classifier is the costliest detector).
/// The bound is exact: a rule's score never exceeds the sum of the positive
/// weights of the signals that could be present.
fn may_reach_threshold(
    policy: &CompiledPolicy,
    rule: &CompiledRule,
    evidence: &Evidence<'_>,
) -> bool {
    may_fire(policy, rule, &evidence.normalized.signs, |hits_from| {
        !evidence.hits_of(hits_from).is_empty()
    })
}

/// Whether `rule` can reach its threshold when the match signals for which
/// `may_have_hits` (asked with the signal whose hits they read) is true
/// are present and every classifier and adversarial-suffix signal is
/// counted as matched. Given a superset of the hits a text has, a rule for
/// which this is false cannot fire on it: the engine asks this before the
/// costly pattern searches, with the signals that may have hits, to leave
/// out the patterns only such rules read.
pub(crate) fn may_fire(
    policy: &CompiledPolicy,
    rule: &CompiledRule,
    signs: &ObfuscationSigns,
    may_have_hits: impl Fn(u32) -> bool,
) -> bool {
    let mut reachable = 0.0f32;
    for &signal_id in &rule.signals {
        let Some(signal) = policy.signal(signal_id) else {
            return false;
        };
        let possible = match &signal.source {
            SignalSource::Matches {
                hits_from, near, ..
            } => {
                may_have_hits(*hits_from)
                    && near
                        .as_ref()
                        .is_none_or(|n| n.hits_from.iter().any(|f| may_have_hits(*f)))
            }
            SignalSource::Classifier { .. } | SignalSource::AdversarialSuffix { .. } => true,
            SignalSource::Obfuscation(obfuscation) => {
                obfuscation.iter().any(|s| sign_present(signs, *s))
            }
        };
        if !possible && signal.required {
            return false;
        }
        if possible && signal.weight > 0.0 {
            reachable += signal.weight;
        }
    }
    reachable + 1e-6 >= rule.threshold
}

/// A classifier signal's threshold for texts from `role`: its own for
/// that role if it sets one, else `default`.
pub(crate) fn classifier_threshold(
    role_thresholds: &[(Role, f32)],
    role: Role,
    default: f32,
) -> f32 {
    role_thresholds
        .iter()
        .find(|(r, _)| *r == role)
        .map_or(default, |(_, t)| *t)
}

pub(crate) fn sign_present(signs: &ObfuscationSigns, sign: ObfuscationSign) -> bool {
    match sign {
        ObfuscationSign::Invisible => signs.invisible > 0,
        ObfuscationSign::UnicodeTags => signs.unicode_tags > 0,
        ObfuscationSign::BidiControls => signs.bidi_controls > 0,
        ObfuscationSign::Homoglyphs => signs.homoglyphs > 0,
        ObfuscationSign::Leet => signs.leet > 0,
        ObfuscationSign::SplitLetters => signs.split_letters > 0,
        ObfuscationSign::MixedScripts => signs.mixed_scripts > 0,
    }
}

fn score_everywhere(
    rule: &CompiledRule,
    weights: &[f32],
    required: &[bool],
    nonpositional: &[bool],
    positives: &[Event],
    negatives: &[Event],
    base: f32,
) -> Option<Outcome> {
    let mut present = nonpositional.to_vec();
    for e in positives.iter().chain(negatives) {
        present[e.local] = true;
    }
    if required.iter().zip(&present).any(|(r, p)| *r && !*p) {
        return None;
    }
    let positional: f32 = (0..weights.len())
        .filter(|i| present[*i] && !nonpositional[*i])
        .map(|i| weights[i])
        .sum();
    let score = base + positional;
    if score + 1e-6 < rule.threshold {
        return None;
    }
    Some(outcome(score, positives))
}

#[allow(clippy::too_many_arguments)]
fn score_windowed(
    rule: &CompiledRule,
    window: usize,
    weights: &[f32],
    required: &[bool],
    nonpositional: &[bool],
    positives: &[Event],
    negatives: &[Event],
    base: f32,
) -> Option<Outcome> {
    if positives.is_empty() {
        return score_everywhere(rule, weights, required, nonpositional, positives, &[], base);
    }
    let mut counts = vec![0u32; weights.len()];
    let mut left = 0usize;
    let mut best: Option<(f32, usize, usize)> = None;
    for right in 0..positives.len() {
        counts[positives[right].local] += 1;
        while positives[right]
            .range
            .start
            .saturating_sub(positives[left].range.start)
            > window
        {
            counts[positives[left].local] -= 1;
            left += 1;
        }
        let lo = positives[left].range.start.saturating_sub(window);
        let hi = positives[right].range.end + window;
        let mut present: Vec<bool> = (0..weights.len())
            .map(|i| counts[i] > 0 || nonpositional[i])
            .collect();
        for e in negatives
            .iter()
            .filter(|e| e.range.start >= lo && e.range.start <= hi)
        {
            present[e.local] = true;
        }
        if required.iter().zip(&present).any(|(r, p)| *r && !*p) {
            continue;
        }
        let positional: f32 = (0..weights.len())
            .filter(|i| present[*i] && !nonpositional[*i])
            .map(|i| weights[i])
            .sum();
        let score = base + positional;
        if best.is_none_or(|(s, _, _)| score > s) {
            best = Some((score, left, right));
        }
    }
    let (score, left, right) = best?;
    if score + 1e-6 < rule.threshold {
        return None;
    }
    Some(outcome(score, &positives[left..=right]))
}

fn outcome(score: f32, events: &[Event]) -> Outcome {
    let start = events.iter().map(|e| e.range.start).min().unwrap_or(0);
    let end = events.iter().map(|e| e.range.end).max().unwrap_or(0);
    Outcome {
        score,
        span: start..end,
        redact_spans: events.iter().map(|e| e.range.clone()).collect(),
    }
}
