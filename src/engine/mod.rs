//! The decision engine: runs a compiled policy's detectors over the texts of
//! a request (or an answer) and combines their signals into a [`Decision`].
//!
//! It is pure: no HTTP, no I/O. The proxy extracts [`Segment`]s from the wire
//! format, calls [`evaluate`], and acts on the verdict.

mod cache;
mod decision;
mod explain;
mod liveness;
mod score;

pub use cache::{CacheStats, SegmentCache};
pub use decision::{Decision, Finding, Verdict, apply_redactions};
pub use explain::{RuleExplanation, SignalExplanation, explain};

use std::borrow::Cow;
use std::ops::Range;

use crate::detect::decode::{Encoding, decode_payloads};
use crate::detect::normalize::{Normalized, View, normalize};
use crate::detect::patterns::ScanMemos;
use crate::detect::validators::{iban_valid, luhn_valid};
use crate::policy::{
    CompiledPolicy, CompiledRule, Direction, Form, FormMatchers, Role, SignalSource, Validator,
};
use liveness::Need;

/// Most hits kept per form and matcher kind for one text; bounds the work on
/// adversarial input (thousands of near-matches).
const MAX_HITS: usize = 4096;

/// One piece of text the model reads or wrote, with where it came from.
#[derive(Debug, Clone)]
pub struct Segment<'a> {
    /// Who wrote it (rules can be limited to roles).
    pub role: Role,
    /// Where it is in the request, for decisions and audit (`messages[1].content[0]`).
    pub location: String,
    /// The text itself.
    pub text: Cow<'a, str>,
}

impl<'a> Segment<'a> {
    /// Convenience constructor.
    pub fn new(role: Role, location: impl Into<String>, text: impl Into<Cow<'a, str>>) -> Self {
        Self {
            role,
            location: location.into(),
            text: text.into(),
        }
    }
}

/// A positional hit of one signal, in original-text byte offsets.
#[derive(Debug, Clone)]
pub(crate) struct Hit {
    pub signal: u32,
    pub range: Range<usize>,
}

/// Everything the detectors found in one text, ready for rule scoring.
pub(crate) struct Evidence<'t> {
    /// Positional hits sorted by signal then start.
    pub hits: Vec<Hit>,
    pub normalized: &'t Normalized,
    pub role: Role,
    classifier_scores: Vec<Option<f32>>,
    /// The text as sent: the adversarial-suffix score reads its case and
    /// symbols, which the normalised form folds away.
    original: &'t str,
    suffix_score: Option<f32>,
}

impl<'t> Evidence<'t> {
    /// The evidence of one text: its hits (sorted by signal, then start)
    /// and its normalised forms; classifier and suffix scores are computed
    /// when a rule asks.
    fn new(
        policy: &CompiledPolicy,
        hits: Vec<Hit>,
        normalized: &'t Normalized,
        role: Role,
        original: &'t str,
    ) -> Self {
        Evidence {
            hits,
            normalized,
            role,
            classifier_scores: vec![None; policy.classifiers.len()],
            original,
            suffix_score: None,
        }
    }

    /// Classifier score for a model, computed once per text.
    pub fn classifier_score(&mut self, policy: &CompiledPolicy, model: usize) -> f32 {
        if let Some(Some(score)) = self.classifier_scores.get(model) {
            return *score;
        }
        let score = policy
            .classifiers
            .get(model)
            .map(|m| m.score(&self.normalized.normalized.text))
            .unwrap_or(0.0);
        if let Some(slot) = self.classifier_scores.get_mut(model) {
            *slot = Some(score);
        }
        score
    }

    /// Adversarial-suffix score of the text as sent, computed once per text
    /// and only when a rule that could still fire asks for it.
    pub fn suffix_score(&mut self) -> f32 {
        *self
            .suffix_score
            .get_or_insert_with(|| crate::detect::suffix::suffix_score(self.original))
    }

    /// Hits of one signal.
    pub fn hits_of(&self, signal: u32) -> &[Hit] {
        let start = self.hits.partition_point(|h| h.signal < signal);
        let end = self.hits.partition_point(|h| h.signal <= signal);
        &self.hits[start..end]
    }
}

/// The rules that block `text` sent as a lone user message, if it is
/// blocked: what the model tests ask of each example.
pub fn blocking_rules(policy: &CompiledPolicy, text: &str) -> Option<Vec<String>> {
    blocking_rules_as(policy, Role::User, text)
}

/// The rules that block `text` sent as a lone message of `role` on the input
/// side, if it is blocked.
pub fn blocking_rules_as(policy: &CompiledPolicy, role: Role, text: &str) -> Option<Vec<String>> {
    let (verdict, rules) = input_verdict_as(policy, role, text);
    (verdict == Verdict::Block).then_some(rules)
}

/// The verdict on `text` sent as a lone message of `role` on the input side,
/// and the rules behind it.
pub fn input_verdict_as(policy: &CompiledPolicy, role: Role, text: &str) -> (Verdict, Vec<String>) {
    verdict_as(policy, Direction::Input, role, text)
}

/// The verdict on `text` as a lone message of `role` read in `direction`
/// (a model answer is `Direction::Output` with `Role::Assistant`), and the
/// rules behind it: what `palisade eval` asks of each example.
pub fn verdict_as(
    policy: &CompiledPolicy,
    direction: Direction,
    role: Role,
    text: &str,
) -> (Verdict, Vec<String>) {
    let location = match direction {
        Direction::Input => "messages[0].content",
        Direction::Output => "choices[0].message.content",
    };
    let decision = evaluate(policy, direction, &[Segment::new(role, location, text)]);
    let rules = decision.rule_ids().iter().map(|r| r.to_string()).collect();
    (decision.verdict, rules)
}

/// Evaluates every segment in one direction and combines the findings.
pub fn evaluate(
    policy: &CompiledPolicy,
    direction: Direction,
    segments: &[Segment<'_>],
) -> Decision {
    evaluate_with(policy, direction, segments, |segment| {
        scan_segment(policy, direction, segment)
    })
}

/// [`evaluate`], answering texts seen before from `cache` (which must be
/// used with this one policy only: it does not know which policy filled
/// it). The decision is the same as [`evaluate`]'s.
pub fn evaluate_cached(
    policy: &CompiledPolicy,
    cache: &SegmentCache,
    direction: Direction,
    segments: &[Segment<'_>],
) -> Decision {
    evaluate_with(policy, direction, segments, |segment| {
        cache.get_or_scan(direction, segment.role, &segment.text, || {
            scan_segment(policy, direction, segment)
        })
    })
}

fn evaluate_with(
    policy: &CompiledPolicy,
    direction: Direction,
    segments: &[Segment<'_>],
    mut found_in: impl FnMut(&Segment<'_>) -> cache::Found,
) -> Decision {
    let mut findings = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        if !policy.rules.iter().any(|r| r.sees(direction, segment.role)) {
            continue;
        }
        for (fired, decoded) in found_in(segment) {
            findings.push(fired.into_finding(index, &segment.location, decoded));
        }
    }
    decide(policy, findings)
}

/// The rules that fire on one segment's text and on the payloads decoded
/// from it, each with its decoding chain (`None` for the text itself).
fn scan_segment(
    policy: &CompiledPolicy,
    direction: Direction,
    segment: &Segment<'_>,
) -> cache::Found {
    let text: &str = &segment.text;
    let mut out: cache::Found = scan_text(policy, direction, segment.role, text, None)
        .into_iter()
        .map(|fired| (fired, None))
        .collect();
    let Some(limits) = &policy.decode else {
        return out;
    };
    if !policy
        .rules
        .iter()
        .any(|r| r.reads_payloads() && r.sees(direction, segment.role))
    {
        return out;
    }
    for payload in decode_payloads(text, limits) {
        let names: Vec<&str> = payload.chain.iter().map(|e| e.as_str()).collect();
        let names = names.join(">");
        let chain = Some(payload.chain.as_slice());
        for mut fired in scan_text(policy, direction, segment.role, &payload.text, chain) {
            // Offsets inside decoded text mean nothing to the client: point at the payload.
            fired.span = payload.span.clone();
            fired.redact_spans = vec![payload.span.clone()];
            out.push((fired, Some(names.clone())));
        }
    }
    out
}

/// A rule that fired on one text, before it is tied to a segment.
#[derive(Debug, Clone)]
pub(crate) struct Fired {
    pub score: f32,
    pub span: Range<usize>,
    pub redact_spans: Vec<Range<usize>>,
    pub action: crate::policy::Action,
    pub direction: Direction,
    pub policy_rule_id: std::sync::Arc<str>,
    pub category: Option<std::sync::Arc<str>>,
    pub severity: crate::policy::Severity,
    pub monitor: bool,
}

impl Fired {
    fn into_finding(self, segment: usize, location: &str, decoded: Option<String>) -> Finding {
        Finding {
            rule: self.policy_rule_id,
            category: self.category,
            action: self.action,
            severity: self.severity,
            direction: self.direction,
            segment,
            location: location.to_string(),
            span: self.span,
            decoded,
            score: self.score,
            monitor: self.monitor,
            redact_spans: self.redact_spans,
        }
    }
}

/// Runs all detectors of the policy over one text and scores the rules that
/// see it. `payload` is the decoding chain when `text` was decoded from a
/// payload (then only rules that read such payloads run), `None` for the
/// text as sent.
pub(crate) fn scan_text(
    policy: &CompiledPolicy,
    direction: Direction,
    role: Role,
    text: &str,
    payload: Option<&[Encoding]>,
) -> Vec<Fired> {
    let normalized = normalize(text);
    let reads = |rule: &CompiledRule| {
        let reads = match payload {
            None => rule.reads_plain(),
            Some(chain) => rule.reads_payload(chain),
        };
        reads && rule.sees(direction, role)
    };
    let hits = collect_hits(policy, direction, text, &normalized, &reads);
    let mut evidence = Evidence::new(policy, hits, &normalized, role, text);
    let mut fired = Vec::new();
    for rule in &policy.rules {
        if !reads(rule) {
            continue;
        }
        if let Some(outcome) = score::score_rule(policy, rule, &mut evidence) {
            fired.push(Fired {
                score: outcome.score,
                span: outcome.span,
                redact_spans: outcome.redact_spans,
                action: rule.action(direction),
                direction,
                policy_rule_id: rule.id.clone(),
                category: rule.category.clone(),
                severity: rule.severity,
                monitor: rule.monitor,
            });
        }
    }
    fired
}

/// The hits of the signals that rules reading this text (`reads`) may
/// need. Keywords and required literals are found first (Aho-Corasick
/// passes); rules that cannot fire even if every pattern without a required
/// literal matched are then left out. The sets of the patterns without a
/// required literal are then searched one at a time, only while a rule
/// that may still fire reads one of their patterns, and rules are left out
/// again after each; only the regexes of the rules left are run for
/// positions. The hits of those rules' signals are exactly what a search of
/// every pattern would give them.
fn collect_hits(
    policy: &CompiledPolicy,
    direction: Direction,
    text: &str,
    normalized: &Normalized,
    reads: &dyn Fn(&CompiledRule) -> bool,
) -> Vec<Hit> {
    let views = form_views(policy, direction, text, normalized);
    let mut hits = keyword_hits(&views);
    let mut memos = ScanMemos::default();
    let mut liveness = initial_liveness(policy, reads, normalized, &views, &hits, &mut memos);
    // Set by set: each search can rule out rules, and with them the sets
    // only they needed. Every set holding a pattern of a needed signal is
    // searched before the loop ends. The sets of required signals go
    // first, then those of the other scoring signals, then the mitigating
    // ones, which only rules still live after the others need. Live rules
    // only ever shrink, so each (form, kind) walk resumes where it stopped.
    let mut cursors = vec![[0usize; Need::IN_SEARCH_ORDER.len()]; views.len()];
    while let Some(searched) = Need::IN_SEARCH_ORDER
        .iter()
        .enumerate()
        .find_map(|(kind, need)| {
            views
                .iter()
                .zip(cursors.iter_mut())
                .find_map(|((matchers, view_text, _), cursor)| {
                    let from = cursor.get_mut(kind)?;
                    matchers
                        .patterns
                        .search_next_set_from(view_text, &mut memos, from, |s| {
                            liveness.is_needed_as(s, *need)
                        })
                })
        })
    {
        for (matchers, view_text, _) in &views {
            matchers
                .patterns
                .ruled_out(view_text, &memos, searched, |s| liveness.rule_out(s));
        }
        liveness.settle();
    }
    let needed = liveness.needed();
    let needed = |signal: u32| needed.get(signal as usize).copied().unwrap_or(false);
    add_pattern_hits(policy, &views, &mut memos, needed, &mut hits);
    // Full key: equal keys are identical hits, so the unstable sort is deterministic.
    hits.sort_unstable_by_key(|h| (h.signal, h.range.start, h.range.end));
    hits
}

/// Every hit of every signal in `text`, none left out because no rule
/// could fire without it: what [`explain`] shows.
fn collect_every_hit(
    policy: &CompiledPolicy,
    direction: Direction,
    text: &str,
    normalized: &Normalized,
) -> Vec<Hit> {
    let views = form_views(policy, direction, text, normalized);
    let mut hits = keyword_hits(&views);
    let mut memos = ScanMemos::default();
    add_pattern_hits(policy, &views, &mut memos, |_| true, &mut hits);
    hits.sort_unstable_by_key(|h| (h.signal, h.range.start, h.range.end));
    hits
}

/// A form's matchers with the text they read and the view that maps its
/// offsets back to the original text (`None`: the original itself).
type FormView<'a> = (&'a FormMatchers, &'a str, Option<&'a View>);

/// The forms the policy's matchers read in `direction`, each with its text.
fn form_views<'a>(
    policy: &'a CompiledPolicy,
    direction: Direction,
    text: &'a str,
    normalized: &'a Normalized,
) -> Vec<FormView<'a>> {
    policy
        .matchers
        .get(direction)
        .iter()
        .map(|(form, matchers)| match form {
            Form::Raw => (matchers, text, None),
            Form::Normalized => (
                matchers,
                normalized.normalized.text.as_str(),
                Some(&normalized.normalized),
            ),
            Form::Deobfuscated => (
                matchers,
                normalized.deobfuscated.text.as_str(),
                Some(&normalized.deobfuscated),
            ),
        })
        .collect()
}

/// `start..end` of a view's text as a range of the original text.
fn original_range(view: Option<&View>, start: usize, end: usize) -> Range<usize> {
    match view {
        Some(v) => v.original_range(start, end),
        None => start..end,
    }
}

/// The keyword hits of every form (one Aho-Corasick pass each).
fn keyword_hits(views: &[FormView<'_>]) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (matchers, view_text, view) in views {
        matchers.keywords.scan(view_text, MAX_HITS, |h| {
            hits.push(Hit {
                signal: h.signal,
                range: original_range(*view, h.start, h.end),
            })
        });
    }
    hits
}

/// Adds the pattern hits of the signals `needed` accepts, on every form,
/// that their validators (card numbers, IBANs) accept.
fn add_pattern_hits(
    policy: &CompiledPolicy,
    views: &[FormView<'_>],
    memos: &mut ScanMemos,
    needed: impl Fn(u32) -> bool + Copy,
    hits: &mut Vec<Hit>,
) {
    for (matchers, view_text, view) in views {
        matchers
            .patterns
            .scan_with_memo(view_text, MAX_HITS, memos, needed, |h| {
                if validator_accepts(
                    policy,
                    h.signal,
                    view_text.get(h.start..h.end).unwrap_or(""),
                ) {
                    hits.push(Hit {
                        signal: h.signal,
                        range: original_range(*view, h.start, h.end),
                    });
                }
            });
    }
}

/// The rules that may fire on a text before any set is searched: a signal
/// may have hits if a keyword of it was found (`keyword_hits`) or one of its
/// patterns is possible on its form (its required literal occurs, or its
/// set is not searched yet); each such source is counted, so that set
/// searches can rule them out one by one.
fn initial_liveness<'p>(
    policy: &'p CompiledPolicy,
    reads: &'p dyn Fn(&CompiledRule) -> bool,
    normalized: &'p Normalized,
    views: &[FormView<'_>],
    keyword_hits: &[Hit],
    memos: &mut ScanMemos,
) -> liveness::Liveness<'p> {
    let mut possible = vec![0u32; policy.signals.len()];
    for hit in keyword_hits {
        if let Some(p) = possible.get_mut(hit.signal as usize) {
            *p = 1;
        }
    }
    for (matchers, view_text, _) in views {
        matchers
            .patterns
            .possible_signals(view_text, memos, |signal| {
                if let Some(p) = possible.get_mut(signal as usize) {
                    *p += 1;
                }
            });
    }
    liveness::Liveness::new(policy, reads, &normalized.signs, possible)
}

fn validator_accepts(policy: &CompiledPolicy, signal: u32, matched: &str) -> bool {
    match policy.signal(signal).map(|s| &s.source) {
        Some(SignalSource::Matches {
            validate: Some(Validator::Luhn),
            ..
        }) => luhn_valid(matched),
        Some(SignalSource::Matches {
            validate: Some(Validator::Iban),
            ..
        }) => iban_valid(matched),
        _ => true,
    }
}

/// Combines findings: the strongest action wins; the refusal text comes from
/// the strongest finding's rule (or its category), else the policy default.
fn decide(policy: &CompiledPolicy, findings: Vec<Finding>) -> Decision {
    let monitor_verdict = findings
        .iter()
        .filter(|f| f.monitor)
        .map(|f| Verdict::from(f.action))
        .max();
    let Some(strongest) = findings
        .iter()
        .filter(|f| !f.monitor)
        .max_by_key(|f| (f.action, f.severity))
    else {
        let mut decision = Decision::allow();
        decision.findings = findings;
        decision.monitor_verdict = monitor_verdict;
        return decision;
    };
    let verdict = Verdict::from(strongest.action);
    let monitor_verdict = monitor_verdict.filter(|m| *m > verdict);
    let message = matches!(verdict, Verdict::Block | Verdict::Steer).then(|| {
        policy
            .rules
            .iter()
            .find(|r| r.id == strongest.rule)
            .and_then(|r| r.message.clone())
            .unwrap_or_else(|| policy.refusal_message.clone())
    });
    Decision {
        verdict,
        findings,
        message,
        monitor_verdict,
    }
}

#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
