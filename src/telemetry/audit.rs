//! The audit log: one JSON line per decision that found something (and,
//! when configured, per allowed request too), written by a background
//! thread so the request path never waits on disk. Texts are recorded as
//! length and SHA-256 only, unless raw text is explicitly enabled.

use std::io::Write;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::engine::{Decision, Segment, Verdict};
use crate::policy::Direction;

/// Where audit records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditSink {
    /// Nowhere (audit off).
    Off,
    /// Standard output, one JSON object per line.
    Stdout,
    /// Appended to a file.
    File(PathBuf),
}

/// Records queued for the writer; past this, records are dropped and counted.
const QUEUE: usize = 8192;

/// Handle used by request handlers; cheap to clone.
#[derive(Clone)]
pub struct AuditLog {
    sender: Option<SyncSender<String>>,
    include_text: bool,
    include_allowed: bool,
}

/// Context of the request a decision belongs to.
pub struct AuditContext<'a> {
    /// Request id.
    pub request_id: &'a str,
    /// Proxy API key id, when authenticated.
    pub key_id: Option<&'a str>,
    /// Policy name.
    pub policy: &'a str,
    /// Route.
    pub route: &'a str,
    /// Whether the decision was only observed (monitor mode).
    pub monitor: bool,
}

#[derive(Serialize)]
struct Record<'a> {
    time_unix_ms: u128,
    request_id: &'a str,
    key_id: Option<&'a str>,
    policy: &'a str,
    route: &'a str,
    direction: &'static str,
    action: &'static str,
    mode: &'static str,
    rules: Vec<&'a str>,
    categories: Vec<&'a str>,
    findings: Vec<FindingRecord<'a>>,
    texts: &'a [CapturedText],
}

#[derive(Serialize)]
struct FindingRecord<'a> {
    rule: &'a str,
    category: Option<&'a str>,
    action: &'static str,
    location: &'a str,
    span: [usize; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded: Option<&'a str>,
}

/// What the audit log keeps of one text: where it was, its length and
/// hash, and the text itself only when raw text is enabled.
#[derive(Debug, Clone, Serialize)]
pub struct CapturedText {
    /// Location in the request or answer.
    pub location: String,
    /// Length in bytes.
    pub length: usize,
    /// SHA-256 of the text, hex.
    pub sha256: String,
    /// The raw text (only with `include_text`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CapturedText {
    /// Captures a segment.
    pub fn of(segment: &Segment<'_>, keep_text: bool) -> Self {
        Self {
            location: segment.location.clone(),
            length: segment.text.len(),
            sha256: sha256_hex(&segment.text),
            text: keep_text.then(|| segment.text.to_string()),
        }
    }
}

impl AuditLog {
    /// Opens the sink and starts the writer thread.
    pub fn open(
        sink: &AuditSink,
        include_text: bool,
        include_allowed: bool,
    ) -> std::io::Result<Self> {
        let writer: Box<dyn Write + Send> = match sink {
            AuditSink::Off => {
                return Ok(Self {
                    sender: None,
                    include_text,
                    include_allowed,
                });
            }
            AuditSink::Stdout => Box::new(std::io::stdout()),
            AuditSink::File(path) => Box::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            ),
        };
        let (sender, receiver) = sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("palisade-audit".into())
            .spawn(move || write_loop(receiver, writer))?;
        Ok(Self {
            sender: Some(sender),
            include_text,
            include_allowed,
        })
    }

    /// An audit log that records nothing.
    pub fn off() -> Self {
        Self {
            sender: None,
            include_text: false,
            include_allowed: false,
        }
    }

    /// Whether records are written at all (callers skip capturing texts otherwise).
    pub fn enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Whether raw text is recorded.
    pub fn include_text(&self) -> bool {
        self.include_text
    }

    /// Records one decision about the captured texts.
    pub fn record(
        &self,
        ctx: &AuditContext<'_>,
        direction: Direction,
        decision: &Decision,
        texts: &[CapturedText],
    ) {
        let Some(sender) = &self.sender else { return };
        if decision.verdict == Verdict::Allow && !self.include_allowed {
            return;
        }
        let record = Record {
            time_unix_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0),
            request_id: ctx.request_id,
            key_id: ctx.key_id,
            policy: ctx.policy,
            route: ctx.route,
            direction: direction.as_str(),
            action: decision.verdict.as_str(),
            mode: if ctx.monitor { "monitor" } else { "enforce" },
            rules: decision.rule_ids(),
            categories: decision.categories(),
            findings: decision
                .findings
                .iter()
                .map(|f| FindingRecord {
                    rule: &f.rule,
                    category: f.category.as_deref(),
                    action: f.action.as_str(),
                    location: &f.location,
                    span: [f.span.start, f.span.end],
                    decoded: f.decoded.as_deref(),
                })
                .collect(),
            texts,
        };
        let Ok(line) = serde_json::to_string(&record) else {
            return;
        };
        match sender.try_send(line) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => tracing::warn!("audit queue full; record dropped"),
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("audit writer stopped; record dropped")
            }
        }
    }
}

fn sha256_hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_loop(receiver: Receiver<String>, mut writer: Box<dyn Write + Send>) {
    while let Ok(line) = receiver.recv() {
        if writeln!(writer, "{line}")
            .and_then(|()| writer.flush())
            .is_err()
        {
            tracing::error!("cannot write the audit log");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Role;

    #[test]
    fn records_hash_and_length_but_not_text_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(&AuditSink::File(path.clone()), false, true).unwrap();
        let texts = [CapturedText::of(
            &Segment::new(Role::User, "messages[0].content", "secret words"),
            false,
        )];
        let ctx = AuditContext {
            request_id: "r1",
            key_id: Some("team-a"),
            policy: "default",
            route: "/v1/chat/completions",
            monitor: false,
        };
        log.record(&ctx, Direction::Input, &Decision::allow(), &texts);
        drop(log);
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let v: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(v["request_id"], "r1");
        assert_eq!(v["key_id"], "team-a");
        assert_eq!(v["texts"][0]["length"], 12);
        assert_eq!(v["texts"][0]["sha256"].as_str().unwrap().len(), 64);
        assert!(v["texts"][0].get("text").is_none());
        assert!(!text.contains("secret words"));
    }
}
