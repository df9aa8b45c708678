//! What the engine concluded about a request or an answer.

use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

use crate::policy::{Action, Direction, Severity};

/// The overall outcome, strongest finding wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing fired.
    Allow,
    /// Something fired with `flag`: recorded only.
    Flag,
    /// Spans were redacted; the rest goes through.
    Redact,
    /// Forward with a safety system message and verify the answer.
    Steer,
    /// Refused.
    Block,
}

impl Verdict {
    /// Lower-case name for headers and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Flag => "flag",
            Verdict::Redact => "redact",
            Verdict::Steer => "steer",
            Verdict::Block => "block",
        }
    }
}

impl From<Action> for Verdict {
    fn from(action: Action) -> Self {
        match action {
            Action::Flag => Verdict::Flag,
            Action::Redact => Verdict::Redact,
            Action::Steer => Verdict::Steer,
            Action::Block => Verdict::Block,
        }
    }
}

/// One rule that fired on one piece of text.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Rule id.
    pub rule: Arc<str>,
    /// Category id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<Arc<str>>,
    /// What the rule does.
    pub action: Action,
    /// Severity.
    pub severity: Severity,
    /// Input or output.
    pub direction: Direction,
    /// Index of the segment it fired on.
    pub segment: usize,
    /// Where that segment is in the request (`messages[2].content`).
    pub location: String,
    /// Byte range in the segment's original text (never the text itself).
    pub span: Range<usize>,
    /// Encodings peeled off before the match (`base64`, `hex>base64`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decoded: Option<String>,
    /// Combined signal score.
    pub score: f32,
    /// Shadow mode: recorded and counted, not enforced.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub monitor: bool,
    /// For `redact`: every range to replace in the segment.
    #[serde(skip)]
    pub redact_spans: Vec<Range<usize>>,
}

/// The engine's answer for a whole request or answer.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    /// Strongest action among the findings.
    pub verdict: Verdict,
    /// Every rule that fired.
    pub findings: Vec<Finding>,
    /// Refusal text for a block or steer verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// What monitor-mode findings would have done, when stronger than the verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_verdict: Option<Verdict>,
}

impl Decision {
    /// A decision with no findings.
    pub fn allow() -> Self {
        Self {
            verdict: Verdict::Allow,
            findings: Vec::new(),
            message: None,
            monitor_verdict: None,
        }
    }

    /// Turns every finding into a monitor-only one (global shadow mode):
    /// the verdict becomes `allow`, and what would have happened is kept.
    pub fn into_monitor(mut self) -> Self {
        let would = self.findings.iter().map(|f| Verdict::from(f.action)).max();
        for f in &mut self.findings {
            f.monitor = true;
        }
        self.monitor_verdict = would
            .filter(|v| *v > Verdict::Allow)
            .or(self.monitor_verdict);
        self.verdict = Verdict::Allow;
        self.message = None;
        self
    }

    /// Distinct rule ids that fired, in order of first appearance.
    pub fn rule_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for f in &self.findings {
            if !ids.contains(&f.rule.as_ref()) {
                ids.push(&f.rule);
            }
        }
        ids
    }

    /// Distinct categories that fired.
    pub fn categories(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for c in self.findings.iter().filter_map(|f| f.category.as_deref()) {
            if !out.contains(&c) {
                out.push(c);
            }
        }
        out
    }

    /// Ranges to redact in one segment, with the rule id for the marker.
    pub fn redactions_for(&self, segment: usize) -> Vec<(Range<usize>, &str)> {
        self.findings
            .iter()
            .filter(|f| f.segment == segment && f.action == Action::Redact && !f.monitor)
            .flat_map(|f| {
                f.redact_spans
                    .iter()
                    .map(move |r| (r.clone(), f.rule.as_ref()))
            })
            .collect()
    }

    /// Whether any finding asks for redaction.
    pub fn has_redactions(&self) -> bool {
        self.findings
            .iter()
            .any(|f| f.action == Action::Redact && !f.monitor)
    }
}

/// Replaces each range with `[REDACTED:<rule>]`. Overlapping ranges are
/// merged (the first rule names the marker); out-of-range or non-boundary
/// ranges are clamped so the output is always valid text.
pub fn apply_redactions(text: &str, ranges: &[(Range<usize>, &str)]) -> String {
    let mut sorted: Vec<(Range<usize>, &str)> = ranges
        .iter()
        .map(|(r, id)| {
            (
                floor_boundary(text, r.start)..ceil_boundary(text, r.end),
                *id,
            )
        })
        .filter(|(r, _)| r.start < r.end)
        .collect();
    sorted.sort_by_key(|(r, _)| (r.start, std::cmp::Reverse(r.end)));
    let mut out = String::with_capacity(text.len());
    let mut cursor = 0usize;
    let mut iter = sorted.into_iter().peekable();
    while let Some((mut range, id)) = iter.next() {
        while let Some((next, _)) = iter.peek() {
            if next.start <= range.end {
                range.end = range.end.max(next.end);
                iter.next();
            } else {
                break;
            }
        }
        if range.start < cursor {
            range.start = cursor;
        }
        out.push_str(&text[cursor..range.start]);
        out.push_str("[REDACTED:");
        out.push_str(id);
        out.push(']');
        cursor = range.end;
    }
    out.push_str(&text[cursor..]);
    out
}

fn floor_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redactions_merge_and_clamp() {
        let text = "key sk-abc and sk-def end";
        let out = apply_redactions(
            text,
            &[(4..10, "k"), (8..14, "k"), (15..21, "k2"), (100..200, "x")],
        );
        assert_eq!(out, "key [REDACTED:k] [REDACTED:k2] end");
    }

    #[test]
    fn redaction_never_splits_a_char() {
        let text = "ünïcode";
        let out = apply_redactions(text, &[(1..3, "r")]);
        assert_eq!(out, "[REDACTED:r]ïcode");
    }
}
