//! Property tests over hostile input: whatever bytes arrive, the SSE parser
//! and stream guard, request parsing, the policy loader and the engine
//! answer with a value or a typed error, never a panic, and redaction always
//! yields valid text. (Coverage-guided fuzzing with cargo-fuzz needs a
//! nightly toolchain; these run on stable in every CI build.)

#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup step should fail the test loudly"
)]

use std::path::Path;
use std::sync::{Arc, OnceLock};

use palisade::engine::{Segment, apply_redactions, evaluate};
use palisade::openai::extract;
use palisade::openai::types::ChatRequest;
use palisade::policy::{self, CompiledPolicy, Direction, Role};
use palisade::proxy::handlers::Endpoint;
use palisade::proxy::sse::Parser;
use palisade::proxy::stream::StreamGuard;
use proptest::prelude::*;

fn default_policy() -> Arc<CompiledPolicy> {
    static POLICY: OnceLock<Arc<CompiledPolicy>> = OnceLock::new();
    POLICY
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR"));
            Arc::new(policy::load_path(&root.join("policies/default.yaml")).unwrap())
        })
        .clone()
}

/// Text that mixes the ingredients attackers use: words, separators,
/// invisible and tag characters, homoglyphs, encodings.
fn hostile_text() -> impl Strategy<Value = String> {
    let pieces = prop_oneof![
        Just("ignore ".to_string()),
        Just("previous instructions ".to_string()),
        Just("sk-".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{e0041}".to_string()),
        Just("аео".to_string()),
        Just("aWdub3Jl".to_string()),
        Just("%69%67".to_string()),
        Just("data: ".to_string()),
        Just("\n\n".to_string()),
        Just("\r\n".to_string()),
        "[a-zA-Z0-9 ]{0,12}",
        any::<char>().prop_map(|c| c.to_string()),
    ];
    prop::collection::vec(pieces, 0..40).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn sse_parser_and_stream_guard_survive_any_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        cut in 0usize..600,
    ) {
        let mut parser = Parser::new(4096);
        let mut guard = StreamGuard::new(default_policy(), Endpoint::Chat, false, String::new());
        let cut = cut.min(bytes.len());
        for piece in [&bytes[..cut], &bytes[cut..]] {
            match parser.push(piece) {
                Ok(events) => for e in events { let _ = guard.on_event(e); },
                Err(_) => { let _ = guard.fail("bad stream"); }
            }
        }
        let _ = guard.on_upstream_end();
        prop_assert!(guard.ended());
    }

    #[test]
    fn stream_guard_survives_hostile_chunks(texts in prop::collection::vec(hostile_text(), 0..30)) {
        let mut guard = StreamGuard::new(default_policy(), Endpoint::Chat, false, String::new());
        let mut out = Vec::new();
        for (i, t) in texts.iter().enumerate() {
            let chunk = serde_json::json!({"choices": [{"index": i % 2, "delta": {"content": t}}]});
            let event = palisade::proxy::sse::Event { data: Some(chunk.to_string()), other_lines: vec![] };
            out.extend(guard.on_event(event));
        }
        out.extend(guard.on_upstream_end());
        for bytes in out {
            prop_assert!(std::str::from_utf8(&bytes).is_ok());
        }
    }

    #[test]
    fn request_parsing_never_panics(body in prop::collection::vec(any::<u8>(), 0..400)) {
        if let Ok(request) = serde_json::from_slice::<ChatRequest>(&body) {
            let _ = extract::chat_segments(&request);
        }
    }

    #[test]
    fn chat_requests_of_any_shape_are_extracted(content in hostile_text(), role in "[a-z]{1,10}") {
        let body = serde_json::json!({"model": "m", "messages": [
            {"role": role, "content": content},
            {"role": "user", "content": [{"type": "text", "text": content}, {"type": "image_url", "image_url": {"url": "x"}}]},
            {"role": "assistant", "tool_calls": [{"id": "1", "type": "function", "function": {"name": "f", "arguments": content}}]}
        ]});
        let request: ChatRequest = serde_json::from_value(body).unwrap();
        let segments = extract::chat_segments(&request);
        prop_assert!(segments.len() >= 2 || content.is_empty());
    }

    #[test]
    fn engine_and_redaction_keep_text_valid(text in hostile_text()) {
        let policy = default_policy();
        let segments = [Segment::new(Role::User, "messages[0].content", text.as_str())];
        let decision = evaluate(&policy, Direction::Input, &segments);
        let ranges = decision.redactions_for(0);
        let redacted = apply_redactions(&text, &ranges);
        prop_assert!(std::str::from_utf8(redacted.as_bytes()).is_ok());
        let out = evaluate(&policy, Direction::Output, &[Segment::new(Role::Assistant, "choices[0]", text.as_str())]);
        let _ = out.verdict;
    }

    #[test]
    fn policy_loader_reports_errors_instead_of_panicking(yaml in "[ -~\n]{0,300}") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.yaml");
        std::fs::write(&path, &yaml).unwrap();
        if let Err(e) = policy::load_path(&path) {
            prop_assert!(!e.to_string().is_empty());
        }
    }
}
