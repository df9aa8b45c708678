use std::io::Write;

use serde_json::{Value, json};

use super::*;
use crate::proxy::sse::Parser;

const POLICY: &str = r#"
version: 1
name: stream-test
refusal: { mode: message, message: "Stopped by policy." }
stream: { holdback_chars: 64 }
rules:
  - id: forbidden-phrase
    applies_to: output
    keywords: ["purple elephant protocol"]
    action: block
  - id: secret-key
    applies_to: output
    forms: [raw]
    regex: ['\bsk-[A-Za-z0-9]{20,}']
    action: redact
  - id: declines
    category: refusal
    applies_to: output
    keywords: ["i can't help with that"]
    action: flag
"#;

fn policy_with(extra: &str) -> Arc<CompiledPolicy> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(
        POLICY
            .replace("stream: { holdback_chars: 64 }", extra)
            .as_bytes(),
    )
    .unwrap();
    Arc::new(crate::policy::load_path(file.path()).unwrap())
}

fn policy() -> Arc<CompiledPolicy> {
    policy_with("stream: { holdback_chars: 64 }")
}

fn guard(policy: Arc<CompiledPolicy>) -> StreamGuard {
    StreamGuard::new(policy, Endpoint::Chat, false, "Steered refusal.".into())
}

fn chunk(index: u64, content: &str) -> Event {
    data_event(json!({
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": index, "delta": {"content": content}, "finish_reason": null}]
    }))
}

fn finish(index: u64) -> Event {
    data_event(json!({
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}]
    }))
}

fn data_event(value: Value) -> Event {
    Event {
        data: Some(value.to_string()),
        other_lines: Vec::new(),
    }
}

fn done() -> Event {
    Event {
        data: Some("[DONE]".into()),
        other_lines: Vec::new(),
    }
}

/// What a client reads: the content per choice, the finish reasons, the
/// raw data lines.
#[derive(Default, Debug)]
struct Client {
    content: BTreeMap<u64, String>,
    finish: BTreeMap<u64, String>,
    tool_arguments: String,
    data: Vec<String>,
}

fn read(bytes: &[Bytes]) -> Client {
    let mut parser = Parser::new(1 << 24);
    let mut client = Client::default();
    for b in bytes {
        for event in parser.push(b).unwrap() {
            let Some(data) = event.data else { continue };
            client.data.push(data.clone());
            let Ok(value) = serde_json::from_str::<Value>(&data) else {
                continue;
            };
            for choice in value["choices"].as_array().cloned().unwrap_or_default() {
                let index = choice["index"].as_u64().unwrap();
                let text = choice["delta"]["content"]
                    .as_str()
                    .or(choice["text"].as_str())
                    .unwrap_or("");
                client.content.entry(index).or_default().push_str(text);
                for call in choice["delta"]["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(a) = call["function"]["arguments"].as_str() {
                        client.tool_arguments.push_str(a);
                    }
                }
                if let Some(f) = choice["finish_reason"].as_str() {
                    client.finish.insert(index, f.to_string());
                }
            }
        }
    }
    client
}

fn run(guard: &mut StreamGuard, events: Vec<Event>) -> Vec<Bytes> {
    let mut out = Vec::new();
    for e in events {
        out.extend(guard.on_event(e));
    }
    out
}

const PHRASE: &str = "purple elephant protocol";

fn answer_with_phrase() -> (String, usize) {
    let before = "Sure. Here is a long and harmless introduction with ünïcödé 🙂 text, \
                  going on for a while so that the window fills up properly. Then: ";
    let text = format!("{before}{PHRASE} and more text after it that should never arrive.");
    (text, before.len())
}

#[test]
fn allowed_answer_arrives_whole_and_ends_with_done() {
    let text = "Hello there! ".repeat(50);
    let mut events: Vec<Event> = text
        .split_inclusive(' ')
        .map(|piece| chunk(0, piece))
        .collect();
    events.push(finish(0));
    events.push(done());
    let mut g = guard(policy());
    let out = run(&mut g, events);
    let client = read(&out);
    assert_eq!(client.content[&0], text);
    assert_eq!(client.finish[&0], "stop");
    assert_eq!(client.data.last().unwrap(), "[DONE]");
    assert_eq!(g.outcome().0.verdict, Verdict::Allow);
}

#[test]
fn forbidden_phrase_split_at_every_char_boundary_never_reaches_the_client() {
    let (text, phrase_start) = answer_with_phrase();
    let boundaries: Vec<usize> = (1..text.len())
        .filter(|i| text.is_char_boundary(*i))
        .collect();
    let shared = policy();
    for &split in &boundaries {
        let mut g = guard(Arc::clone(&shared));
        let events = vec![
            chunk(0, &text[..split]),
            chunk(0, &text[split..]),
            finish(0),
            done(),
        ];
        let client = read(&run(&mut g, events));
        let seen = &client.content[&0];
        assert!(
            !seen.contains("purple"),
            "split at {split}: leaked {seen:?}"
        );
        assert!(
            seen.ends_with("Stopped by policy."),
            "split at {split}: {seen:?}"
        );
        assert!(text.starts_with(&seen[..seen.len() - "Stopped by policy.".len()]));
        assert!(seen.len() - "Stopped by policy.".len() <= phrase_start);
        assert_eq!(client.finish[&0], "content_filter");
        assert_eq!(client.data.last().unwrap(), "[DONE]");
        let (decision, cut) = g.outcome();
        assert_eq!(decision.verdict, Verdict::Block);
        assert_eq!(cut.unwrap().reason, "policy");
    }
}

#[test]
fn one_character_chunks_and_raw_byte_splits_are_caught_too() {
    let (text, _) = answer_with_phrase();
    // One event per character.
    let mut events: Vec<Event> = text.chars().map(|c| chunk(0, &c.to_string())).collect();
    events.push(finish(0));
    events.push(done());
    let mut g = guard(policy());
    let client = read(&run(&mut g, events.clone()));
    assert!(!client.content[&0].contains("purple"));
    assert_eq!(client.finish[&0], "content_filter");

    // The same stream as bytes, cut inside every event (and every UTF-8 character).
    let wire: Vec<u8> = events
        .iter()
        .flat_map(|e| e.encode(e.data.as_deref()).to_vec())
        .collect();
    let shared = policy();
    for split in (0..wire.len()).step_by(61) {
        let mut parser = Parser::new(1 << 20);
        let mut g = guard(Arc::clone(&shared));
        let mut out = Vec::new();
        for piece in [&wire[..split], &wire[split..]] {
            for event in parser.push(piece).unwrap() {
                out.extend(g.on_event(event));
            }
        }
        let client = read(&out);
        assert!(!client.content[&0].contains("purple"), "split at {split}");
        assert_eq!(client.finish[&0], "content_filter");
    }
}

#[test]
fn ten_thousand_chunks_cost_linear_work() {
    let mut events: Vec<Event> = (0..10_000).map(|i| chunk(0, &format!("w{i} "))).collect();
    events.push(finish(0));
    events.push(done());
    let expected: String = (0..10_000).map(|i| format!("w{i} ")).collect();
    let mut g = guard(policy());
    let client = read(&run(&mut g, events));
    assert_eq!(client.content[&0], expected);
    // Each byte is scanned a bounded number of times: window / step.
    assert!(
        g.scanned_bytes() <= 8 * expected.len(),
        "scanned {} bytes for a {}-byte answer",
        g.scanned_bytes(),
        expected.len()
    );
}

#[test]
fn two_choices_are_tracked_separately_and_both_end_on_a_cut() {
    let (bad, _) = answer_with_phrase();
    let good = "A perfectly fine answer in the other choice. ".repeat(4);
    let mut g = guard(policy());
    let mut events = Vec::new();
    let bad_chars: Vec<char> = bad.chars().collect();
    for (i, piece) in good.as_bytes().chunks(10).enumerate() {
        events.push(chunk(0, std::str::from_utf8(piece).unwrap()));
        let from = (i * 10).min(bad_chars.len());
        let to = ((i + 1) * 10).min(bad_chars.len());
        events.push(chunk(1, &bad_chars[from..to].iter().collect::<String>()));
    }
    events.push(finish(0));
    events.push(finish(1));
    events.push(done());
    let client = read(&run(&mut g, events));
    assert!(!client.content[&1].contains("purple"));
    assert!(good.starts_with(&client.content[&0].replace("Stopped by policy.", "")));
    assert_eq!(client.finish[&1], "content_filter");
    assert_eq!(client.finish[&0], "content_filter");
}

#[test]
fn secrets_in_content_and_tool_arguments_are_redacted_across_chunks() {
    let secret = "sk-ABCDEFGHIJKLMNOPQRSTUVWXyz0123";
    let text = format!(
        "Your key is {secret}, keep it safe. {}",
        "Filler. ".repeat(20)
    );
    let mut events: Vec<Event> = text
        .as_bytes()
        .chunks(5)
        .map(|c| chunk(0, std::str::from_utf8(c).unwrap()))
        .collect();
    let args = format!("{{\"token\": \"{secret}\"}}");
    events.push(data_event(json!({
        "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
        "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": "save", "arguments": ""}}]}, "finish_reason": null}]
    })));
    for piece in args.as_bytes().chunks(4) {
        events.push(data_event(json!({
            "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0,
                "function": {"arguments": std::str::from_utf8(piece).unwrap()}}]}, "finish_reason": null}]
        })));
    }
    events.push(finish(0));
    events.push(done());
    let mut g = guard(policy());
    let out = run(&mut g, events);
    let client = read(&out);
    assert!(
        !client.content[&0].contains("ABCDEFGHIJ"),
        "{}",
        client.content[&0]
    );
    assert!(client.content[&0].contains("[REDACTED:secret-key]"));
    assert!(client.content[&0].ends_with("Filler. "));
    assert!(!client.tool_arguments.contains("ABCDEFGHIJ"));
    assert_eq!(
        client.tool_arguments,
        "{\"token\": \"[REDACTED:secret-key]\"}"
    );
    let joined: String = client.data.join("\n");
    assert!(joined.contains("\"name\":\"save\"") && joined.contains("call_1"));
    assert_eq!(g.outcome().0.verdict, Verdict::Redact);
}

#[test]
fn usage_chunks_keep_alives_and_other_lines_pass_unchanged() {
    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}});
    let keep_alive = Event {
        data: None,
        other_lines: vec![": keep-alive".into()],
    };
    let mut g = guard(policy());
    let out = run(
        &mut g,
        vec![
            keep_alive,
            chunk(0, "Hi."),
            finish(0),
            data_event(usage.clone()),
            done(),
        ],
    );
    let wire: String = out
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    assert!(wire.starts_with(": keep-alive\n\n"));
    let client = read(&out);
    assert_eq!(client.content[&0], "Hi.");
    let usage_seen: Value = serde_json::from_str(&client.data[client.data.len() - 2]).unwrap();
    assert_eq!(usage_seen["usage"], usage["usage"]);
}

#[test]
fn upstream_that_stops_mid_answer_ends_with_an_error_event() {
    let mut g = guard(policy());
    let mut out = run(&mut g, vec![chunk(0, "Half an ans")]);
    out.extend(g.on_upstream_end());
    let client = read(&out);
    let last: Value = serde_json::from_str(client.data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_stream_error");
    assert!(g.ended());
    // Not an allowed outcome, not a policy block either.
    assert_eq!(g.outcome().1.unwrap().reason, "upstream_error");
}

#[test]
fn garbage_from_upstream_ends_with_an_error_event() {
    let mut g = guard(policy());
    let out = g.on_event(Event {
        data: Some("{not json".into()),
        other_lines: Vec::new(),
    });
    let client = read(&out);
    let last: Value = serde_json::from_str(client.data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["type"], "upstream_error");
}

#[test]
fn steered_answer_must_decline() {
    let complies = "The most peaceful religion is clearly the one I like best, because ".repeat(3);
    let mut g = StreamGuard::new(policy(), Endpoint::Chat, true, "Steered refusal.".into());
    let client = read(&run(&mut g, vec![chunk(0, &complies), finish(0), done()]));
    assert_eq!(client.content[&0], "Steered refusal.");
    assert_eq!(client.finish[&0], "content_filter");

    let declines = "I can't help with that, but here is some neutral background. ".repeat(3);
    let mut g = StreamGuard::new(policy(), Endpoint::Chat, true, "Steered refusal.".into());
    let client = read(&run(&mut g, vec![chunk(0, &declines), finish(0), done()]));
    assert_eq!(client.content[&0], declines);
    assert_eq!(client.finish[&0], "stop");
}

#[test]
fn buffer_mode_releases_nothing_before_the_end_and_has_a_cap() {
    let mut g = guard(policy_with(
        "stream: { mode: buffer, buffer_max_bytes: 1000 }",
    ));
    let early = run(&mut g, vec![chunk(0, &"Fine text. ".repeat(20))]);
    assert!(read(&early).content.is_empty());
    let rest = run(&mut g, vec![finish(0), done()]);
    assert_eq!(read(&rest).content[&0], "Fine text. ".repeat(20));

    let mut g = guard(policy_with(
        "stream: { mode: buffer, buffer_max_bytes: 1000 }",
    ));
    let client = read(&run(
        &mut g,
        vec![chunk(0, &"x".repeat(600)), chunk(0, &"y".repeat(600))],
    ));
    assert_eq!(client.finish[&0], "content_filter");
    assert_eq!(g.outcome().1.unwrap().reason, "buffer_exceeded");
}

#[test]
fn legacy_completions_stream_text() {
    let (text, _) = answer_with_phrase();
    let mut g = StreamGuard::new(policy(), Endpoint::Completion, false, String::new());
    let events: Vec<Event> = text
        .chars()
        .collect::<Vec<_>>()
        .chunks(3)
        .map(|c| {
            data_event(json!({"id": "c", "object": "text_completion", "model": "m",
                "choices": [{"index": 0, "text": c.iter().collect::<String>(), "finish_reason": null}]}))
        })
        .collect();
    let client = read(&run(&mut g, events));
    assert!(!client.content[&0].contains("purple"));
    assert_eq!(client.finish[&0], "content_filter");
}

#[test]
fn error_mode_cuts_without_refusal_text() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(POLICY.replace("mode: message", "mode: error").as_bytes())
        .unwrap();
    let policy = Arc::new(crate::policy::load_path(file.path()).unwrap());
    let (text, _) = answer_with_phrase();
    let mut g = guard(policy);
    let client = read(&run(&mut g, vec![chunk(0, &text)]));
    assert!(!client.content[&0].contains("Stopped"));
    assert_eq!(client.finish[&0], "content_filter");
}

#[test]
fn holdback_shorter_than_a_keyword_is_rejected() {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(
        POLICY
            .replace(
                "stream: { holdback_chars: 64 }",
                "stream: { holdback_chars: 5 }",
            )
            .as_bytes(),
    )
    .unwrap();
    let err = crate::policy::load_path(file.path())
        .unwrap_err()
        .to_string();
    assert!(err.contains("holdback_chars"), "{err}");
}

#[test]
fn canary_leak_split_across_chunks_cuts_the_stream() {
    let leak = Arc::new(crate::detect::leak::LeakDetector::new(
        Some("pls-0123456789abcdef"),
        &["You are a helpful assistant."],
        0,
    ));
    let text = format!(
        "{}My instructions end with [session reference: p l s - 0123 4567 89ab cdef] and more.",
        "Some harmless opening words. ".repeat(3)
    );
    let mut g = guard(policy()).with_leak_checks(leak);
    let events: Vec<Event> = text
        .as_bytes()
        .chunks(3)
        .map(|c| chunk(0, std::str::from_utf8(c).unwrap()))
        .chain([finish(0), done()])
        .collect();
    let client = read(&run(&mut g, events));
    assert!(
        !client.content[&0].contains("0123"),
        "{}",
        client.content[&0]
    );
    assert_eq!(client.finish[&0], "content_filter");
    assert_eq!(g.outcome().1.unwrap().reason, "system_prompt_leak");
}

/// Some servers stream `delta.content` as an array of typed parts. Its text
/// is moderated like string content (here: cut at the forbidden phrase), not
/// forwarded unread; a part without text stays in the delta.
#[test]
fn array_shaped_delta_content_is_moderated_too() {
    let (text, _) = answer_with_phrase();
    let mut events: Vec<Event> = text
        .as_bytes()
        .chunks(7)
        .map(|c| {
            data_event(json!({
                "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
                "choices": [{"index": 0, "finish_reason": null, "delta": {"content": [
                    {"type": "text", "text": String::from_utf8_lossy(c)}]}}]
            }))
        })
        .collect();
    events.insert(
        0,
        data_event(json!({
            "id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [{"index": 0, "finish_reason": null, "delta": {"content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}}]
        })),
    );
    events.push(finish(0));
    events.push(done());
    let out = run(&mut guard(policy()), events);
    let client = read(&out);
    let joined = client.data.join("\n");
    assert!(!joined.contains("elephant"), "{joined}");
    assert!(joined.contains("example.com/a.png"), "{joined}");
    assert_eq!(
        client.finish.get(&0).map(String::as_str),
        Some("content_filter")
    );
    assert!(
        client.content[&0].starts_with("Sure. Here is"),
        "{:?}",
        client.content
    );
}
