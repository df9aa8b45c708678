//! Streaming answers (server-sent events), moderated as they arrive.
//!
//! Every text channel of every choice (content, refusal, each tool call's
//! arguments, a legacy completion's text) keeps two small buffers: `pending`,
//! text received but not yet released, and `context`, the tail of what was
//! already released. The output rules run over `context + pending` only when
//! enough new text has accumulated, and release everything except the last
//! `holdback_chars`. So each byte is scanned a bounded number of times
//! (linear in the answer), memory is bounded by the window, and a forbidden
//! phrase split across chunks in any way is seen whole before any of it is
//! released. The policy's `stream.mode` chooses `window` (this), `buffer`
//! (release nothing until the end) or `passthrough` (no output checks).
//!
//! [`StreamGuard`] is the pure state machine (events in, bytes out);
//! [`moderate`] drives it from the upstream response on a task that stops
//! the upstream request when the client goes away.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::guard::{guard_finding, leak_finding};
use super::handlers::Endpoint;
use super::sse::{Event, Parser};
use crate::detect::leak::LeakDetector;
use crate::engine::{self, Decision, Finding, Segment, Verdict, apply_redactions};
use crate::policy::{Action, CompiledPolicy, Direction, RefusalMode, Role, StreamMode};

/// Largest single SSE event accepted from an upstream.
const MAX_EVENT_BYTES: usize = 4 << 20;

/// A redaction may hold back at most this many windows of text.
const RUNAWAY_FACTOR: usize = 16;

/// Category whose rules recognise a model declining (see `guard`).
const REFUSAL_CATEGORY: &str = "refusal";

/// Finish reason of a stream the guard ended.
const CONTENT_FILTER: &str = "content_filter";

/// Which text field of a choice a channel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    /// `delta.content` (chat) or `text` (legacy completions).
    Content,
    /// `delta.refusal`.
    Refusal,
    /// `delta.tool_calls[index].function.arguments`.
    ToolArguments(u64),
}

/// One text channel: text not yet released, and the tail of released text
/// kept as left context for matches that straddle the release point.
#[derive(Debug, Default)]
struct Channel {
    pending: String,
    context: String,
    /// Characters in `pending` (kept to avoid recounting).
    pending_chars: usize,
    /// Any text seen at all (for steer verification).
    seen: usize,
}

/// What ended the stream early.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Why, for metrics (`policy`, `steer_not_declined`, `buffer_exceeded`,
    /// `upstream_error`, `client_disconnected`).
    pub reason: &'static str,
}

impl Cut {
    /// The guard ended the stream on purpose (a policy decision), as
    /// opposed to a failure or the client leaving.
    pub fn enforced(&self) -> bool {
        matches!(
            self.reason,
            "policy" | "steer_not_declined" | "buffer_exceeded" | "system_prompt_leak"
        )
    }
}

/// The state machine that moderates one streamed answer.
pub struct StreamGuard {
    policy: Arc<CompiledPolicy>,
    endpoint: Endpoint,
    steered: bool,
    steer_refusal: String,
    channels: BTreeMap<(u64, Field), Channel>,
    /// Choices seen, and whether each has finished.
    choices: BTreeMap<u64, bool>,
    /// `id`, `object`, `created`, `model` of the upstream's chunks, reused
    /// for chunks the guard writes itself.
    template: Map<String, Value>,
    /// A steered answer was seen declining.
    steer_verified: bool,
    findings: Vec<Finding>,
    message: Option<String>,
    cut: Option<Cut>,
    ended: bool,
    /// Bytes handed to the detectors so far (the linear-cost check).
    scanned_bytes: usize,
    /// This request's system-prompt leak checks.
    leak: Option<Arc<LeakDetector>>,
}

impl StreamGuard {
    /// A guard for one answer. `steered`: the request was forwarded with a
    /// safety instruction, so the answer must decline or it is replaced by
    /// `steer_refusal`.
    pub fn new(
        policy: Arc<CompiledPolicy>,
        endpoint: Endpoint,
        steered: bool,
        steer_refusal: String,
    ) -> Self {
        Self {
            policy,
            endpoint,
            steered,
            steer_refusal,
            channels: BTreeMap::new(),
            choices: BTreeMap::new(),
            template: Map::new(),
            steer_verified: false,
            findings: Vec::new(),
            message: None,
            cut: None,
            ended: false,
            scanned_bytes: 0,
            leak: None,
        }
    }

    /// Also blocks answers that leak the request's system prompt or canary.
    pub fn with_leak_checks(mut self, leak: Arc<LeakDetector>) -> Self {
        self.leak = Some(leak);
        self
    }

    /// The stream is over (answer complete, cut, or failed): stop reading.
    pub fn ended(&self) -> bool {
        self.ended
    }

    /// Bytes the detectors have read so far: stays proportional to the
    /// answer's length (each byte is rescanned a bounded number of times).
    pub fn scanned_bytes(&self) -> usize {
        self.scanned_bytes
    }

    /// The outcome for audit and metrics. A cut stream is always `block`.
    pub fn outcome(&self) -> (Decision, Option<Cut>) {
        let mut decision = Decision::allow();
        decision.findings = self.findings.clone();
        let strongest = self
            .findings
            .iter()
            .filter(|f| !f.monitor)
            .map(|f| Verdict::from(f.action))
            .max();
        decision.monitor_verdict = self
            .findings
            .iter()
            .filter(|f| f.monitor)
            .map(|f| Verdict::from(f.action))
            .max();
        decision.verdict = match (&self.cut, strongest) {
            (Some(cut), _) if cut.enforced() => Verdict::Block,
            (_, Some(v)) => v.min(Verdict::Redact),
            (_, None) => Verdict::Allow,
        };
        decision.message = self.message.clone();
        (decision, self.cut.clone())
    }

    /// Handles one upstream event and returns the bytes for the client.
    pub fn on_event(&mut self, event: Event) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        let Some(data) = event.data.as_deref() else {
            return vec![event.encode(None)];
        };
        if data.trim() == "[DONE]" {
            let mut out = self.flush_all();
            if !self.ended {
                out.push(event.encode(Some("[DONE]")));
                self.ended = true;
            }
            return out;
        }
        let Ok(Value::Object(mut chunk)) = serde_json::from_str::<Value>(data) else {
            return self.fail("the upstream sent an event that is not a JSON object");
        };
        let Some(Value::Array(choices)) = chunk.remove("choices") else {
            // Errors and other non-choice events go through as they are.
            return vec![event.encode(Some(data))];
        };
        self.remember_template(&chunk);
        let mut out_choices = Vec::new();
        for choice in choices {
            match self.moderate_choice(choice) {
                Ok(Some(choice)) => out_choices.push(choice),
                Ok(None) => {}
                Err(cut) => return self.cut_stream(cut),
            }
        }
        let has_usage = chunk.get("usage").is_some_and(|u| !u.is_null());
        if out_choices.is_empty() && !has_usage {
            return Vec::new();
        }
        chunk.insert("choices".into(), Value::Array(out_choices));
        vec![event.encode(Some(&Value::Object(chunk).to_string()))]
    }

    /// The upstream closed the connection. Without `[DONE]` after unfinished
    /// choices the answer is incomplete: the client gets an error event.
    pub fn on_upstream_end(&mut self) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        let complete = !self.choices.is_empty() && self.choices.values().all(|f| *f);
        if complete {
            let mut out = self.flush_all();
            if !self.ended {
                out.push(Bytes::from_static(b"data: [DONE]\n\n"));
                self.ended = true;
            }
            return out;
        }
        self.fail("the upstream closed the stream before the answer was complete")
    }

    /// The upstream failed mid-stream (reset, timeout, garbage).
    pub fn fail(&mut self, message: &str) -> Vec<Bytes> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        self.cut = Some(Cut {
            reason: "upstream_error",
        });
        vec![error_event(message)]
    }

    /// The client went away; the upstream request is dropped by the caller.
    pub fn client_gone(&mut self) {
        if !self.ended {
            self.ended = true;
            self.cut = Some(Cut {
                reason: "client_disconnected",
            });
        }
    }

    fn remember_template(&mut self, chunk: &Map<String, Value>) {
        if self.template.is_empty() {
            for key in ["id", "object", "created", "model", "system_fingerprint"] {
                if let Some(v) = chunk.get(key) {
                    self.template.insert(key.into(), v.clone());
                }
            }
        }
    }

    /// Moves a choice's texts into their channels and writes back what may
    /// be released now. `Ok(None)`: nothing left worth sending.
    fn moderate_choice(&mut self, choice: Value) -> Result<Option<Value>, Cut> {
        let Value::Object(mut choice) = choice else {
            return Ok(Some(choice));
        };
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0);
        self.choices.entry(index).or_insert(false);
        let finishing = choice.get("finish_reason").is_some_and(|f| !f.is_null());
        // Token log-probabilities spell out the held-back text.
        choice.remove("logprobs");
        let mut touched: Vec<Field> = Vec::new();
        match self.endpoint {
            Endpoint::Completion => {
                if let Some(Value::String(text)) = choice.remove("text") {
                    self.push(index, Field::Content, &text);
                    touched.push(Field::Content);
                }
            }
            _ => {
                if let Some(Value::Object(delta)) = choice.get_mut("delta") {
                    touched = take_delta_texts(delta, |field, text| {
                        self_push(&mut self.channels, index, field, text)
                    });
                }
            }
        }
        let mut released: Vec<(Field, String)> = Vec::new();
        let fields: Vec<Field> = if finishing {
            self.fields_of(index)
        } else {
            touched
        };
        for field in fields {
            let text = self.advance(index, field, finishing)?;
            released.push((field, text));
        }
        if finishing {
            self.choices.insert(index, true);
        }
        self.write_back(&mut choice, &released);
        if !finishing && choice_is_empty(&choice, self.endpoint) {
            return Ok(None);
        }
        Ok(Some(Value::Object(choice)))
    }

    fn push(&mut self, index: u64, field: Field, text: &str) {
        self_push(&mut self.channels, index, field, text);
    }

    fn fields_of(&self, index: u64) -> Vec<Field> {
        self.channels
            .keys()
            .filter(|(i, _)| *i == index)
            .map(|(_, f)| *f)
            .collect()
    }

    /// Scans one channel if it is due (or `last`) and returns the text that
    /// may now be released.
    fn advance(&mut self, index: u64, field: Field, last: bool) -> Result<String, Cut> {
        let settings = self.policy.stream;
        let holdback = settings.holdback_chars;
        let Some(channel) = self.channels.get(&(index, field)) else {
            return Ok(String::new());
        };
        if channel.pending.is_empty() {
            return Ok(String::new());
        }
        if !last {
            match settings.mode {
                StreamMode::Buffer => {
                    let held: usize = self.channels.values().map(|c| c.pending.len()).sum();
                    if held > settings.buffer_max_bytes {
                        return Err(Cut {
                            reason: "buffer_exceeded",
                        });
                    }
                    return Ok(String::new());
                }
                _ => {
                    // Scan once a step of new text beyond the hold-back exists.
                    let step = (holdback / 4).max(32);
                    if channel.pending_chars < holdback + step {
                        return Ok(String::new());
                    }
                }
            }
        }
        let window = format!("{}{}", channel.context, channel.pending);
        let context_len = channel.context.len();
        self.scanned_bytes += window.len();
        let location = location_of(index, field, self.endpoint);
        let decision = engine::evaluate(
            &self.policy,
            Direction::Output,
            &[Segment::new(Role::Assistant, location, window.as_str())],
        );
        let fresh: Vec<Finding> = decision
            .findings
            .into_iter()
            .filter(|f| f.span.end > context_len || f.span.is_empty())
            .collect();
        if self.steered && !self.steer_verified && field == Field::Content {
            let declined = fresh
                .iter()
                .any(|f| f.category.as_deref() == Some(REFUSAL_CATEGORY));
            if declined {
                self.steer_verified = true;
            } else {
                self.findings
                    .push(guard_finding("steer-not-declined", None));
                self.message = Some(self.steer_refusal.clone());
                return Err(Cut {
                    reason: "steer_not_declined",
                });
            }
        }
        if let Some(kind) = self.leak.as_ref().and_then(|l| l.find(&window)) {
            self.findings.push(leak_finding(kind));
            self.message = Some(
                self.policy
                    .leak
                    .message
                    .clone()
                    .unwrap_or_else(|| self.policy.refusal_message.clone()),
            );
            return Err(Cut {
                reason: "system_prompt_leak",
            });
        }
        if let Some(block) = fresh
            .iter()
            .filter(|f| !f.monitor && f.action == Action::Block)
            .max_by_key(|f| f.severity)
        {
            self.message = Some(self.refusal_text_for(block));
            self.record(fresh);
            return Err(Cut { reason: "policy" });
        }
        let released = self.release(index, field, &window, context_len, &fresh, last);
        self.record(fresh);
        Ok(released)
    }

    /// Moves the releasable prefix of `pending` out, redacted.
    fn release(
        &mut self,
        index: u64,
        field: Field,
        window: &str,
        context_len: usize,
        findings: &[Finding],
        last: bool,
    ) -> String {
        let holdback = self.policy.stream.holdback_chars;
        let Some(channel) = self.channels.get_mut(&(index, field)) else {
            return String::new();
        };
        let pending = &window[context_len..];
        let mut cut = if last {
            pending.len()
        } else {
            nth_char_from_end(pending, holdback)
        };
        // A redaction reaching past the release point holds its whole span
        // back: half a secret must not go out now and the rest later.
        let spans: Vec<(std::ops::Range<usize>, &str)> = findings
            .iter()
            .filter(|f| !f.monitor && f.action == Action::Redact)
            .flat_map(|f| f.redact_spans.iter().map(move |r| (r.clone(), &*f.rule)))
            .map(|(r, id)| {
                (
                    r.start.saturating_sub(context_len)..r.end.saturating_sub(context_len),
                    id,
                )
            })
            .filter(|(r, _)| r.end > 0)
            .collect();
        // ...unless the held text grew far beyond the window (an endless
        // match): then the part up to the release point is redacted and goes.
        if pending.len() <= RUNAWAY_FACTOR * holdback.max(64) {
            for (range, _) in &spans {
                if range.start < cut && range.end > cut {
                    cut = range.start;
                }
            }
        }
        let cut = floor_char_boundary(pending, cut);
        let inside: Vec<(std::ops::Range<usize>, &str)> = spans
            .iter()
            .filter(|(r, _)| r.start < cut)
            .map(|(r, id)| (r.start..r.end.min(cut), *id))
            .collect();
        let released = apply_redactions(&pending[..cut], &inside);
        let mut context = String::with_capacity(channel.context.len() + cut);
        context.push_str(&channel.context);
        context.push_str(&pending[..cut]);
        let keep_from = nth_char_from_end(&context, holdback);
        channel.context = floor_and_keep(context, keep_from);
        channel.pending = pending[cut..].to_string();
        channel.pending_chars = channel.pending.chars().count();
        released
    }

    fn record(&mut self, fresh: Vec<Finding>) {
        for finding in fresh {
            if finding.category.as_deref() == Some(REFUSAL_CATEGORY)
                && finding.action == Action::Flag
            {
                continue;
            }
            if !self.findings.iter().any(|f| f.rule == finding.rule) {
                self.findings.push(finding);
            }
        }
    }

    fn refusal_text_for(&self, finding: &Finding) -> String {
        self.policy
            .rules
            .iter()
            .find(|r| r.id == finding.rule)
            .and_then(|r| r.message.clone())
            .unwrap_or_else(|| self.policy.refusal_message.clone())
    }

    /// Releases everything left in every channel (the answer is complete).
    fn flush_all(&mut self) -> Vec<Bytes> {
        let keys: Vec<(u64, Field)> = self
            .channels
            .iter()
            .filter(|(_, c)| !c.pending.is_empty())
            .map(|(k, _)| *k)
            .collect();
        let mut by_choice: BTreeMap<u64, Vec<(Field, String)>> = BTreeMap::new();
        for (index, field) in keys {
            match self.advance(index, field, true) {
                Ok(text) => by_choice.entry(index).or_default().push((field, text)),
                Err(cut) => return self.cut_stream(cut),
            }
        }
        let mut out = Vec::new();
        for (index, released) in by_choice {
            let mut choice = Map::new();
            choice.insert("index".into(), json!(index));
            self.write_back(&mut choice, &released);
            if self.endpoint != Endpoint::Completion {
                choice.entry("delta").or_insert_with(|| json!({}));
            }
            choice.insert("finish_reason".into(), Value::Null);
            out.push(self.chunk_event(vec![Value::Object(choice)]));
        }
        out
    }

    /// Ends the stream: one chunk per unfinished choice with
    /// `finish_reason: content_filter` (and the refusal text in `message`
    /// mode), then `[DONE]`.
    fn cut_stream(&mut self, cut: Cut) -> Vec<Bytes> {
        self.ended = true;
        self.cut = Some(cut);
        let message = self
            .message
            .clone()
            .unwrap_or_else(|| self.policy.refusal_message.clone());
        self.message = Some(message.clone());
        let text = (self.policy.refusal_mode == RefusalMode::Message).then_some(message);
        let mut indices: Vec<u64> = self
            .choices
            .iter()
            .filter(|(_, finished)| !**finished)
            .map(|(i, _)| *i)
            .collect();
        if indices.is_empty() {
            indices.push(0);
        }
        let choices = indices
            .into_iter()
            .map(|index| {
                let mut choice = Map::new();
                choice.insert("index".into(), json!(index));
                match self.endpoint {
                    Endpoint::Completion => {
                        choice.insert("text".into(), json!(text.clone().unwrap_or_default()));
                    }
                    _ => {
                        let delta = match &text {
                            Some(t) => json!({"content": t, "refusal": t}),
                            None => json!({}),
                        };
                        choice.insert("delta".into(), delta);
                    }
                }
                choice.insert("finish_reason".into(), json!(CONTENT_FILTER));
                Value::Object(choice)
            })
            .collect();
        vec![
            self.chunk_event(choices),
            Bytes::from_static(b"data: [DONE]\n\n"),
        ]
    }

    fn chunk_event(&self, choices: Vec<Value>) -> Bytes {
        let mut chunk = self.template.clone();
        if !chunk.contains_key("object") {
            let object = match self.endpoint {
                Endpoint::Completion => "text_completion",
                _ => "chat.completion.chunk",
            };
            chunk.insert("object".into(), json!(object));
        }
        chunk.insert("choices".into(), Value::Array(choices));
        Bytes::from(format!("data: {}\n\n", Value::Object(chunk)))
    }

    /// Puts released texts back into a choice in the endpoint's shape.
    fn write_back(&self, choice: &mut Map<String, Value>, released: &[(Field, String)]) {
        if self.endpoint == Endpoint::Completion {
            for (_, text) in released {
                append_string(choice, "text", text);
            }
            if !choice.contains_key("text") {
                choice.insert("text".into(), json!(""));
            }
            return;
        }
        if released.iter().all(|(_, t)| t.is_empty()) {
            return;
        }
        let mut delta = match choice.remove("delta") {
            Some(Value::Object(delta)) => delta,
            _ => Map::new(),
        };
        for (field, text) in released.iter().filter(|(_, t)| !t.is_empty()) {
            match field {
                Field::Content => append_string(&mut delta, "content", text),
                Field::Refusal => append_string(&mut delta, "refusal", text),
                Field::ToolArguments(tool) => append_tool_arguments(&mut delta, *tool, text),
            }
        }
        choice.insert("delta".into(), Value::Object(delta));
    }
}

/// Adds released arguments to the delta's entry for tool call `tool`.
fn append_tool_arguments(delta: &mut Map<String, Value>, tool: u64, text: &str) {
    let calls = delta.entry("tool_calls").or_insert_with(|| json!([]));
    let Value::Array(calls) = calls else {
        return;
    };
    let existing = calls
        .iter_mut()
        .filter_map(Value::as_object_mut)
        .find(|c| c.get("index").and_then(Value::as_u64) == Some(tool));
    match existing {
        Some(call) => {
            let function = call.entry("function").or_insert_with(|| json!({}));
            if let Value::Object(function) = function {
                append_string(function, "arguments", text);
            }
        }
        None => calls.push(json!({"index": tool, "function": {"arguments": text}})),
    }
}

fn self_push(channels: &mut BTreeMap<(u64, Field), Channel>, index: u64, field: Field, text: &str) {
    if text.is_empty() {
        return;
    }
    let channel = channels.entry((index, field)).or_default();
    channel.pending.push_str(text);
    let n = text.chars().count();
    channel.pending_chars += n;
    channel.seen += n;
}

/// Removes the moderated texts from a chat delta, handing each to `push`;
/// tool calls keep their id, type and name (arguments are released later).
fn take_delta_texts(
    delta: &mut Map<String, Value>,
    mut push: impl FnMut(Field, &str),
) -> Vec<Field> {
    let mut touched = Vec::new();
    for (key, field) in [("content", Field::Content), ("refusal", Field::Refusal)] {
        match delta.remove(key) {
            Some(Value::String(text)) => {
                push(field, &text);
                touched.push(field);
            }
            Some(Value::Array(parts)) => {
                if let Some(kept) =
                    take_part_texts(parts, |text| push(field, text), &mut touched, field)
                {
                    delta.insert(key.into(), kept);
                }
            }
            Some(other) => {
                delta.insert(key.into(), other);
            }
            None => {}
        }
    }
    if let Some(Value::Array(calls)) = delta.get_mut("tool_calls") {
        for call in calls.iter_mut() {
            let tool = call.get("index").and_then(Value::as_u64).unwrap_or(0);
            let arguments = call
                .get_mut("function")
                .and_then(Value::as_object_mut)
                .and_then(|f| f.remove("arguments"));
            if let Some(Value::String(text)) = arguments {
                push(Field::ToolArguments(tool), &text);
                touched.push(Field::ToolArguments(tool));
            }
        }
        // Entries that carried only arguments have nothing left to say now.
        calls.retain(|call| {
            call.as_object().is_some_and(|c| {
                c.keys().any(|k| k != "index" && k != "function")
                    || c.get("function")
                        .and_then(Value::as_object)
                        .is_some_and(|f| !f.is_empty())
            })
        });
        if calls.is_empty() {
            delta.remove("tool_calls");
        }
    }
    touched
}

/// A delta whose content is an array of parts (some servers stream typed
/// parts): every text in it is moderated like string content and released as
/// string content; parts without text (images, audio) stay in the array,
/// which is returned if anything is left.
fn take_part_texts(
    parts: Vec<Value>,
    mut push: impl FnMut(&str),
    touched: &mut Vec<Field>,
    field: Field,
) -> Option<Value> {
    let mut kept = Vec::new();
    for part in parts {
        let text = match &part {
            Value::String(text) => Some(text.as_str()),
            Value::Object(p) => p.get("text").and_then(Value::as_str),
            _ => None,
        };
        match text {
            Some(text) => {
                push(text);
                if !touched.contains(&field) {
                    touched.push(field);
                }
            }
            None => kept.push(part),
        }
    }
    (!kept.is_empty()).then_some(Value::Array(kept))
}

fn append_string(map: &mut Map<String, Value>, key: &str, text: &str) {
    match map.get_mut(key) {
        Some(Value::String(existing)) => existing.push_str(text),
        // Non-text parts kept from an array-shaped delta (see
        // `take_part_texts`): the released text rides along as a text part.
        Some(Value::Array(parts)) => {
            if !text.is_empty() {
                parts.insert(0, json!({"type": "text", "text": text}));
            }
        }
        _ => {
            map.insert(key.into(), Value::String(text.to_string()));
        }
    }
}

fn choice_is_empty(choice: &Map<String, Value>, endpoint: Endpoint) -> bool {
    let meaningful = |k: &str| !matches!(k, "index" | "finish_reason" | "logprobs");
    let delta_empty = match choice.get("delta") {
        Some(Value::Object(delta)) => delta.is_empty(),
        _ => true,
    };
    match endpoint {
        Endpoint::Completion => {
            choice
                .get("text")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
                && !choice.keys().any(|k| meaningful(k) && k != "text")
        }
        _ => delta_empty && !choice.keys().any(|k| meaningful(k) && k != "delta"),
    }
}

fn location_of(index: u64, field: Field, endpoint: Endpoint) -> String {
    match (endpoint, field) {
        (Endpoint::Completion, _) => format!("choices[{index}].text"),
        (_, Field::Content) => format!("choices[{index}].delta.content"),
        (_, Field::Refusal) => format!("choices[{index}].delta.refusal"),
        (_, Field::ToolArguments(t)) => {
            format!("choices[{index}].delta.tool_calls[{t}].function.arguments")
        }
    }
}

/// Byte index where the last `n` characters of `s` start (0 if shorter).
fn nth_char_from_end(s: &str, n: usize) -> usize {
    if n == 0 {
        return s.len();
    }
    s.char_indices()
        .rev()
        .nth(n - 1)
        .map(|(i, _)| i)
        .unwrap_or(0)
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn floor_and_keep(mut s: String, from: usize) -> String {
    let from = floor_char_boundary(&s, from);
    s.drain(..from);
    s
}

/// Called once when a moderated stream ends, with its outcome.
pub type OnEnd = Box<dyn FnOnce(&Decision, Option<&Cut>) + Send>;

/// The OpenAI-shaped error event that ends a stream the upstream broke.
fn error_event(message: &str) -> Bytes {
    let event = json!({
        "error": {
            "message": format!("palisade: {message}"),
            "type": "upstream_error",
            "param": null,
            "code": "upstream_stream_error",
        }
    });
    Bytes::from(format!("data: {event}\n\n"))
}

/// Why the driving loop stopped waiting for the upstream.
enum Step {
    /// The client's side of the channel is gone.
    ClientGone,
    /// `max_stream_secs` passed.
    Expired,
    /// The upstream body produced a chunk, an error or its end.
    Upstream(Option<reqwest::Result<Bytes>>),
}

/// Streams an upstream SSE answer to the client through a [`StreamGuard`]
/// (or unchanged in `passthrough` mode). The work runs on its own task: when
/// the client disconnects the task ends and drops the upstream response,
/// which closes that connection so the model stops generating. The whole
/// stream, including waiting for a slow client to take the bytes, is
/// bounded by `max_duration`; then it ends with an error event.
pub fn moderate(
    upstream: reqwest::Response,
    guard: StreamGuard,
    on_end: OnEnd,
    max_duration: Duration,
) -> Response {
    let mode = guard.policy.stream.mode;
    let deadline = Instant::now() + max_duration;
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    if mode == StreamMode::Passthrough {
        let (decision, _) = guard.outcome();
        on_end(&decision, None);
        tokio::spawn(relay(upstream, tx, deadline));
    } else {
        tokio::spawn(drive(upstream, guard, tx, on_end, deadline));
    }
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let label = match mode {
        StreamMode::Passthrough => "none",
        StreamMode::Buffer => "buffer",
        StreamMode::Window => "window",
    };
    sse_response(Body::from_stream(body), label)
}

/// Waits for the next upstream chunk, the client leaving, or the deadline.
async fn next_step(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin),
    tx: &mpsc::Sender<Bytes>,
    deadline: Instant,
) -> Step {
    tokio::select! {
        () = tx.closed() => Step::ClientGone,
        () = tokio::time::sleep_until(deadline) => Step::Expired,
        next = body.next() => Step::Upstream(next),
    }
}

/// Hands `bytes` to the client; `false` if it is gone or did not take them
/// before the deadline.
async fn deliver(tx: &mpsc::Sender<Bytes>, bytes: Bytes, deadline: Instant) -> bool {
    matches!(
        tokio::time::timeout_at(deadline, tx.send(bytes)).await,
        Ok(Ok(()))
    )
}

const EXPIRED: &str = "the stream exceeded the proxy's max_stream_secs";

fn upstream_failure(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "the upstream stopped sending (read timeout)"
    } else {
        "the upstream connection failed mid-stream"
    }
}

async fn drive(
    upstream: reqwest::Response,
    mut guard: StreamGuard,
    tx: mpsc::Sender<Bytes>,
    on_end: OnEnd,
    deadline: Instant,
) {
    let mut body = upstream.bytes_stream();
    let mut parser = Parser::new(MAX_EVENT_BYTES);
    while !guard.ended() {
        let out = match next_step(&mut body, &tx, deadline).await {
            Step::ClientGone => {
                guard.client_gone();
                break;
            }
            Step::Expired => guard.fail(EXPIRED),
            Step::Upstream(Some(Ok(bytes))) => match parser.push(&bytes) {
                Ok(events) => events.into_iter().flat_map(|e| guard.on_event(e)).collect(),
                Err(e) => guard.fail(&e.to_string()),
            },
            Step::Upstream(Some(Err(e))) => guard.fail(upstream_failure(&e)),
            Step::Upstream(None) => {
                let mut out = match parser.finish() {
                    Ok(Some(event)) => guard.on_event(event),
                    Ok(None) => Vec::new(),
                    Err(e) => guard.fail(&e.to_string()),
                };
                out.extend(guard.on_upstream_end());
                out
            }
        };
        for bytes in out {
            if !deliver(&tx, bytes, deadline).await {
                guard.client_gone();
                break;
            }
        }
    }
    drop(body);
    let (decision, cut) = guard.outcome();
    on_end(&decision, cut.as_ref());
}

/// `passthrough` mode: the upstream's bytes unchanged, but with the same
/// bounds as a moderated stream and an error event if the upstream breaks.
async fn relay(upstream: reqwest::Response, tx: mpsc::Sender<Bytes>, deadline: Instant) {
    let mut body = upstream.bytes_stream();
    loop {
        let bytes = match next_step(&mut body, &tx, deadline).await {
            Step::ClientGone | Step::Upstream(None) => return,
            Step::Expired => error_event(EXPIRED),
            Step::Upstream(Some(Err(e))) => error_event(upstream_failure(&e)),
            Step::Upstream(Some(Ok(bytes))) => {
                if !deliver(&tx, bytes, deadline).await {
                    return;
                }
                continue;
            }
        };
        // The upstream broke mid-event perhaps: start the error on a line
        // of its own so the client's parser sees a whole event.
        let _ = deliver(&tx, Bytes::from_static(b"\n\n"), deadline).await;
        let _ = deliver(&tx, bytes, deadline).await;
        return;
    }
}

fn sse_response(body: Body, check: &'static str) -> Response {
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-palisade-output-check", HeaderValue::from_static(check));
    response
}

#[cfg(test)]
mod tests;
