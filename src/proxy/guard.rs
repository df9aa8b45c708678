//! The guard core, free of HTTP: check a parsed request and decide whether it
//! is refused, forwarded as sent, or forwarded rewritten (redacted or
//! steered); check a parsed answer and rewrite it when it must not reach the
//! client. Handlers only move bytes around these functions.

use std::sync::Arc;

use bytes::Bytes;
use serde::Serialize;

use crate::detect::leak::{LeakDetector, LeakKind};
use crate::engine::{
    Decision, Finding, SegmentCache, Verdict, apply_redactions, evaluate, evaluate_cached,
};
use crate::error::ApiError;
use crate::openai::extract::{self, Located, Place};
use crate::openai::refusal::CONTENT_FILTER;
use crate::openai::types::{
    ChatMessage, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse, ContentPart,
    EmbeddingRequest, MessageContent,
};
use crate::policy::{Action, CompiledPolicy, Direction, Severity};
use crate::telemetry::audit::CapturedText;

/// Category whose output rules recognise a model declining; `steer` uses it
/// to verify the answer.
pub const REFUSAL_CATEGORY: &str = "refusal";

/// Whether (and how much of) the checked texts to keep for the audit log.
#[derive(Debug, Clone, Copy, Default)]
pub struct Capture {
    /// Keep location, length and hash of every text.
    pub texts: bool,
    /// Also keep the raw text.
    pub raw: bool,
}

/// What to do with a request after the input check.
#[derive(Debug)]
pub struct InputCheck {
    /// The input decision.
    pub decision: Decision,
    /// Texts kept for the audit log.
    pub texts: Vec<CapturedText>,
    /// Body to send upstream; `None` when the request is refused.
    pub forward: Option<Bytes>,
    /// A safety system message was added; the answer must be verified.
    pub steered: bool,
    /// System-prompt leak checks for the answer (canary planted, if any).
    pub leak: Option<Arc<LeakDetector>>,
}

impl InputCheck {
    /// Refused: nothing goes upstream.
    fn refused(decision: Decision, texts: Vec<CapturedText>) -> Self {
        Self {
            decision,
            texts,
            forward: None,
            steered: false,
            leak: None,
        }
    }

    /// Forwarded with `body` (as sent, or rewritten by redactions), without
    /// steer verification or leak checks.
    fn forwarded(decision: Decision, texts: Vec<CapturedText>, body: Bytes) -> Self {
        Self {
            decision,
            texts,
            forward: Some(body),
            steered: false,
            leak: None,
        }
    }
}

/// The decision on located texts, the rewrites its redactions call for,
/// and the captured texts.
struct Checked {
    decision: Decision,
    rewrites: Vec<(Place, String)>,
    texts: Vec<CapturedText>,
}

fn decide_located(
    policy: &CompiledPolicy,
    cache: Option<&SegmentCache>,
    direction: Direction,
    located: &[Located<'_>],
    capture: Capture,
) -> Checked {
    let segments: Vec<_> = located.iter().map(|(s, _)| s.clone()).collect();
    let decision = match cache {
        Some(cache) => evaluate_cached(policy, cache, direction, &segments),
        None => evaluate(policy, direction, &segments),
    };
    let texts = if capture.texts {
        segments
            .iter()
            .map(|s| CapturedText::of(s, capture.raw))
            .collect()
    } else {
        Vec::new()
    };
    let mut rewrites = Vec::new();
    if decision.verdict != Verdict::Block && decision.has_redactions() {
        for (index, (segment, place)) in located.iter().enumerate() {
            let ranges = decision.redactions_for(index);
            if !ranges.is_empty() {
                rewrites.push((place.clone(), apply_redactions(&segment.text, &ranges)));
            }
        }
    }
    Checked {
        decision,
        rewrites,
        texts,
    }
}

fn serialize<T: Serialize>(value: &T) -> Result<Bytes, ApiError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| ApiError::Internal(format!("serialising request: {e}")))
}

/// Input check of a chat request.
pub fn check_chat_request(
    policy: &CompiledPolicy,
    cache: Option<&SegmentCache>,
    mut request: ChatRequest,
    raw: Bytes,
    capture: Capture,
) -> Result<InputCheck, ApiError> {
    let Checked {
        decision,
        rewrites,
        texts,
    } = decide_located(
        policy,
        cache,
        Direction::Input,
        &extract::chat_segments(&request),
        capture,
    );
    if decision.verdict == Verdict::Block {
        return Ok(InputCheck::refused(decision, texts));
    }
    let steered = decision.verdict == Verdict::Steer;
    let rewritten = !rewrites.is_empty();
    // Redactions first: rewriting a system prompt replaces its whole text,
    // which would drop a canary planted before.
    for (place, text) in rewrites {
        extract::rewrite_chat(&mut request, &place, text);
    }
    let leak = plant_leak_checks(policy, &mut request);
    let planted = leak.as_ref().is_some_and(|(_, planted)| *planted);
    let leak = leak.map(|(detector, _)| Arc::new(detector));
    if !rewritten && !steered && !planted {
        return Ok(InputCheck {
            decision,
            texts,
            forward: Some(raw),
            steered,
            leak,
        });
    }
    if steered {
        request
            .messages
            .insert(0, system_message(&policy.steer_message));
    }
    Ok(InputCheck {
        forward: Some(serialize(&request)?),
        decision,
        texts,
        steered,
        leak,
    })
}

/// Builds this request's leak checks from its system and developer
/// messages, planting a canary at the end of the first one when the policy
/// asks for it. Returns the detector and whether the request was changed;
/// `None` when there is no system prompt to protect.
fn plant_leak_checks(
    policy: &CompiledPolicy,
    request: &mut ChatRequest,
) -> Option<(LeakDetector, bool)> {
    if !policy.leak.enabled() {
        return None;
    }
    let is_system = |m: &ChatMessage| m.role == "system" || m.role == "developer";
    let system_texts: Vec<String> = request
        .messages
        .iter()
        .filter(|m| is_system(m))
        .filter_map(|m| m.content.as_ref().map(content_text))
        .collect();
    if system_texts.is_empty() {
        return None;
    }
    let mut canary = None;
    if policy.leak.canary {
        let token = format!("pls-{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let first = request.messages.iter_mut().find(|m| is_system(m));
        if let Some(message) = first {
            let marker = format!("\n\n[session reference: {token}]");
            match &mut message.content {
                Some(MessageContent::Text(text)) => {
                    text.push_str(&marker);
                    canary = Some(token);
                }
                Some(MessageContent::Parts(parts)) => {
                    parts.push(ContentPart {
                        kind: Some("text".into()),
                        text: Some(marker),
                        extra: Default::default(),
                    });
                    canary = Some(token);
                }
                _ => {}
            }
        }
    }
    let texts: Vec<&str> = system_texts.iter().map(String::as_str).collect();
    let detector = LeakDetector::new(canary.as_deref(), &texts, policy.leak.verbatim_words);
    if detector.is_empty() {
        return None;
    }
    Some((detector, canary.is_some()))
}

fn content_text(content: &MessageContent) -> String {
    match content {
        MessageContent::Text(text) => text.clone(),
        MessageContent::Parts(parts) => parts
            .iter()
            .filter_map(|p| p.text.as_deref())
            .collect::<Vec<_>>()
            .join("\n"),
        MessageContent::Other(_) => String::new(),
    }
}

/// A finding for a leaked system prompt (blocks the answer).
pub fn leak_finding(kind: LeakKind) -> Finding {
    guard_finding(kind.rule_id(), Some("system_prompt_leak"))
}

/// A blocking output finding raised by the guard itself rather than by a
/// policy rule (a leak, a steered answer that complied): it has no span.
pub fn guard_finding(rule: &str, category: Option<&str>) -> Finding {
    Finding {
        rule: rule.into(),
        category: category.map(Into::into),
        action: Action::Block,
        severity: Severity::High,
        direction: Direction::Output,
        segment: 0,
        location: "choices".into(),
        span: 0..0,
        decoded: None,
        score: 1.0,
        monitor: false,
        redact_spans: Vec::new(),
    }
}

fn system_message(text: &str) -> ChatMessage {
    ChatMessage {
        role: "system".into(),
        content: Some(MessageContent::Text(text.to_string())),
        tool_calls: None,
        extra: Default::default(),
    }
}

/// Input check of a legacy completion request (`steer` has no system
/// message to add here, so it is treated as `block`).
pub fn check_completion_request(
    policy: &CompiledPolicy,
    cache: Option<&SegmentCache>,
    mut request: CompletionRequest,
    raw: Bytes,
    capture: Capture,
) -> Result<InputCheck, ApiError> {
    let Checked {
        mut decision,
        rewrites,
        texts,
    } = decide_located(
        policy,
        cache,
        Direction::Input,
        &extract::completion_segments(&request),
        capture,
    );
    if decision.verdict == Verdict::Steer {
        decision.verdict = Verdict::Block;
    }
    if decision.verdict == Verdict::Block {
        return Ok(InputCheck::refused(decision, texts));
    }
    if rewrites.is_empty() {
        return Ok(InputCheck::forwarded(decision, texts, raw));
    }
    if let Some(prompt) = request.prompt.as_mut() {
        for (place, text) in rewrites {
            extract::rewrite_value(prompt, &place, text);
        }
    }
    Ok(InputCheck::forwarded(decision, texts, serialize(&request)?))
}

/// Input check of an embeddings request (`steer` is treated as `block`).
pub fn check_embedding_request(
    policy: &CompiledPolicy,
    cache: Option<&SegmentCache>,
    mut request: EmbeddingRequest,
    raw: Bytes,
    capture: Capture,
) -> Result<InputCheck, ApiError> {
    let Checked {
        mut decision,
        rewrites,
        texts,
    } = decide_located(
        policy,
        cache,
        Direction::Input,
        &extract::embedding_segments(&request),
        capture,
    );
    if decision.verdict == Verdict::Steer {
        decision.verdict = Verdict::Block;
    }
    if decision.verdict == Verdict::Block {
        return Ok(InputCheck::refused(decision, texts));
    }
    if rewrites.is_empty() {
        return Ok(InputCheck::forwarded(decision, texts, raw));
    }
    for (place, text) in rewrites {
        extract::rewrite_value(&mut request.input, &place, text);
    }
    Ok(InputCheck::forwarded(decision, texts, serialize(&request)?))
}

/// The checked answer: the bytes to send and the output decision.
#[derive(Debug)]
pub struct OutputCheck {
    /// Body for the client (the upstream's bytes when nothing changed).
    pub body: Bytes,
    /// The output decision.
    pub decision: Decision,
    /// Texts kept for the audit log.
    pub texts: Vec<CapturedText>,
}

/// After `steer`, an answer that no refusal rule recognises counts as
/// compliance and is blocked.
fn verify_steer(decision: &mut Decision, steered: bool, message: &str) {
    if !steered || decision.verdict == Verdict::Block {
        return;
    }
    let declined = decision
        .findings
        .iter()
        .any(|f| f.category.as_deref() == Some(REFUSAL_CATEGORY));
    if !declined {
        decision
            .findings
            .push(guard_finding("steer-not-declined", None));
        decision.verdict = Verdict::Block;
        decision.message = Some(message.to_string());
    }
}

/// Output check of a chat completion. `steer_message` is the refusal used
/// when a steered answer complied.
pub fn check_chat_response(
    policy: &CompiledPolicy,
    raw: Bytes,
    steered: bool,
    steer_refusal: &str,
    leak: Option<&LeakDetector>,
    upstream: &str,
    capture: Capture,
) -> Result<OutputCheck, ApiError> {
    let mut response: ChatResponse =
        serde_json::from_slice(&raw).map_err(|e| ApiError::UpstreamInvalid {
            upstream: upstream.to_string(),
            detail: e.to_string(),
        })?;
    let Checked {
        mut decision,
        rewrites,
        texts,
    } = decide_located(
        policy,
        None,
        Direction::Output,
        &extract::chat_response_segments(&response),
        capture,
    );
    verify_steer(&mut decision, steered, steer_refusal);
    if let Some(kind) = leak.and_then(|l| {
        extract::chat_response_segments(&response)
            .iter()
            .find_map(|(segment, _)| l.find(&segment.text))
    }) {
        decision.findings.push(leak_finding(kind));
        decision.verdict = Verdict::Block;
        decision.message = Some(
            policy
                .leak
                .message
                .clone()
                .unwrap_or_else(|| policy.refusal_message.clone()),
        );
    }
    if decision.verdict == Verdict::Block {
        let message = decision
            .message
            .clone()
            .unwrap_or_else(|| policy.refusal_message.clone());
        for choice in &mut response.choices {
            let mut message_out = system_message(&message);
            message_out.role = "assistant".into();
            message_out
                .extra
                .insert("refusal".into(), serde_json::Value::String(message.clone()));
            choice.message = Some(message_out);
            choice.finish_reason = Some(CONTENT_FILTER.into());
        }
        return Ok(OutputCheck {
            body: serialize(&response)?,
            decision,
            texts,
        });
    }
    if rewrites.is_empty() {
        return Ok(OutputCheck {
            body: raw,
            decision,
            texts,
        });
    }
    for (place, text) in rewrites {
        extract::rewrite_chat_response(&mut response, &place, text);
    }
    Ok(OutputCheck {
        body: serialize(&response)?,
        decision,
        texts,
    })
}

/// Output check of a legacy completion.
pub fn check_completion_response(
    policy: &CompiledPolicy,
    raw: Bytes,
    upstream: &str,
    capture: Capture,
) -> Result<OutputCheck, ApiError> {
    let mut response: CompletionResponse =
        serde_json::from_slice(&raw).map_err(|e| ApiError::UpstreamInvalid {
            upstream: upstream.to_string(),
            detail: e.to_string(),
        })?;
    let Checked {
        decision,
        rewrites,
        texts,
    } = decide_located(
        policy,
        None,
        Direction::Output,
        &extract::completion_response_segments(&response),
        capture,
    );
    if decision.verdict == Verdict::Block {
        let message = decision
            .message
            .clone()
            .unwrap_or_else(|| policy.refusal_message.clone());
        for choice in &mut response.choices {
            choice.text = Some(message.clone());
            choice.finish_reason = Some(CONTENT_FILTER.into());
        }
        return Ok(OutputCheck {
            body: serialize(&response)?,
            decision,
            texts,
        });
    }
    if rewrites.is_empty() {
        return Ok(OutputCheck {
            body: raw,
            decision,
            texts,
        });
    }
    for (place, text) in rewrites {
        extract::rewrite_completion_response(&mut response, &place, text);
    }
    Ok(OutputCheck {
        body: serialize(&response)?,
        decision,
        texts,
    })
}

/// The verdict and rule list of input and output together, for headers.
pub fn combine(input: &Decision, output: Option<&Decision>) -> (Verdict, Vec<String>) {
    let mut verdict = input.verdict;
    let mut rules: Vec<String> = input.rule_ids().into_iter().map(str::to_string).collect();
    if let Some(out) = output {
        verdict = verdict.max(out.verdict);
        for id in out.rule_ids() {
            if !rules.iter().any(|r| r == id) {
                rules.push(id.to_string());
            }
        }
    }
    // A steered request that was answered safely is reported as steer.
    (verdict, rules)
}
