//! Request JSON extraction: arbitrary bytes parsed as a chat, completion or
//! embeddings request never panic; every extracted text can be rewritten in
//! place (what redaction does), and the rewritten request serialises and
//! parses back to the same texts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::openai::extract::{
    Located, chat_segments, completion_segments, embedding_segments, rewrite_chat, rewrite_value,
};
use palisade::openai::types::{ChatRequest, CompletionRequest, EmbeddingRequest};
use palisade::proxy::body::parse_json;

fn texts(segments: &[Located<'_>]) -> Vec<(String, String)> {
    segments
        .iter()
        .map(|(s, p)| (format!("{p:?}"), s.text.to_string()))
        .collect()
}

fn marker(i: usize) -> String {
    format!("[redacted {i}]")
}

fn chat(data: &[u8]) {
    let Ok(mut request) = parse_json::<ChatRequest>(data) else {
        return;
    };
    let places: Vec<_> = chat_segments(&request)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    for (i, place) in places.iter().enumerate() {
        rewrite_chat(&mut request, place, marker(i));
    }
    let after = texts(&chat_segments(&request));
    let expected: Vec<(String, String)> = places
        .iter()
        .enumerate()
        .map(|(i, p)| (format!("{p:?}"), marker(i)))
        .collect();
    assert_eq!(after, expected, "rewriting every text in place");
    let json = serde_json::to_vec(&request).expect("a parsed request serialises");
    let again = parse_json::<ChatRequest>(&json).expect("a serialised request parses");
    // What is forwarded exposes no text that was not scanned: every text in
    // it is one of the rewritten ones. (It may expose fewer: content that
    // was malformed is scanned string by string, and once re-serialised
    // without its duplicated keys it can read as parts whose non-text fields
    // are not model input.)
    for (place, text) in texts(&chat_segments(&again)) {
        assert!(
            after.iter().any(|(_, t)| *t == text),
            "serialised request exposes unscanned {text:?} at {place}"
        );
    }
}

fn completion(data: &[u8]) {
    let Ok(mut request) = parse_json::<CompletionRequest>(data) else {
        return;
    };
    let places: Vec<_> = completion_segments(&request)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    if let Some(prompt) = request.prompt.as_mut() {
        for (i, place) in places.iter().enumerate() {
            rewrite_value(prompt, place, marker(i));
        }
    }
    let after = texts(&completion_segments(&request));
    assert_eq!(after.len(), places.len());
    let json = serde_json::to_vec(&request).expect("a parsed request serialises");
    let again = parse_json::<CompletionRequest>(&json).expect("a serialised request parses");
    assert_eq!(texts(&completion_segments(&again)), after);
}

fn embedding(data: &[u8]) {
    let Ok(mut request) = parse_json::<EmbeddingRequest>(data) else {
        return;
    };
    let places: Vec<_> = embedding_segments(&request)
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    for (i, place) in places.iter().enumerate() {
        rewrite_value(&mut request.input, place, marker(i));
    }
    let after = texts(&embedding_segments(&request));
    assert_eq!(after.len(), places.len());
    let json = serde_json::to_vec(&request).expect("a parsed request serialises");
    let again = parse_json::<EmbeddingRequest>(&json).expect("a serialised request parses");
    assert_eq!(texts(&embedding_segments(&again)), after);
}

fuzz_target!(|data: &[u8]| {
    chat(data);
    completion(data);
    embedding(data);
});
