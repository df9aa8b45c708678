//! Incremental server-sent-events parsing. Upstream bytes arrive split at
//! arbitrary points (inside a line, inside a UTF-8 character); the parser
//! keeps the unfinished tail and yields whole events only, so everything
//! downstream sees complete JSON.

use bytes::{Bytes, BytesMut};

/// One complete SSE event, as the upstream sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `data:` lines joined with `\n` (`None` for comment-only events).
    pub data: Option<String>,
    /// Every other line (`event:`, `id:`, `retry:`, `: keep-alive`), verbatim,
    /// so they can be passed on unchanged.
    pub other_lines: Vec<String>,
}

impl Event {
    /// Serialises the event with a new `data` payload (or none).
    pub fn encode(&self, data: Option<&str>) -> Bytes {
        let mut out = String::new();
        for line in &self.other_lines {
            out.push_str(line);
            out.push('\n');
        }
        if let Some(data) = data {
            for line in data.split('\n') {
                out.push_str("data: ");
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push('\n');
        Bytes::from(out)
    }
}

/// Why the upstream's stream cannot be read further.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    /// An event larger than the limit without a terminating blank line.
    #[error("an upstream stream event exceeded {0} bytes")]
    EventTooLarge(usize),
    /// Bytes that are not UTF-8.
    #[error("the upstream stream is not valid UTF-8")]
    InvalidUtf8,
}

/// Splits a byte stream into events.
#[derive(Debug)]
pub struct Parser {
    buffer: BytesMut,
    /// Bytes of `buffer` already searched for an event boundary.
    searched: usize,
    max_event_bytes: usize,
}

impl Parser {
    /// A parser that refuses events longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            searched: 0,
            max_event_bytes,
        }
    }

    /// Adds bytes and returns every event they complete. Each byte is
    /// examined once for a boundary, so parsing is linear in the stream.
    ///
    /// The size limit applies to each event however the bytes were split: a
    /// complete event over the limit is refused too, and an unfinished one as
    /// soon as it cannot fit any more (the buffer may also hold up to three
    /// bytes of a separator that is not complete yet).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.boundary() {
            let raw = self.buffer.split_to(end.event_end);
            let _separator = self.buffer.split_to(end.separator_len);
            self.searched = 0;
            if let Some(event) = self.parse(&raw)? {
                events.push(event);
            }
        }
        if self.buffer.len() > self.max_event_bytes.saturating_add(MAX_PARTIAL_SEPARATOR) {
            return Err(SseError::EventTooLarge(self.max_event_bytes));
        }
        Ok(events)
    }

    /// Whatever is left when the upstream closes (a last event without its
    /// blank line still counts).
    pub fn finish(&mut self) -> Result<Option<Event>, SseError> {
        let raw = self.buffer.split();
        self.searched = 0;
        self.parse(&raw)
    }

    fn parse(&self, raw: &[u8]) -> Result<Option<Event>, SseError> {
        if raw.len() > self.max_event_bytes {
            return Err(SseError::EventTooLarge(self.max_event_bytes));
        }
        parse_event(raw)
    }

    fn boundary(&mut self) -> Option<Boundary> {
        let bytes = &self.buffer[..];
        // Re-check one byte back: a `\r\n\r\n` may straddle two pushes.
        let from = self.searched.saturating_sub(3);
        for i in from..bytes.len() {
            let rest = &bytes[i..];
            let separator_len = if rest.starts_with(b"\r\n\r\n") {
                4
            } else if rest.starts_with(b"\n\n") || rest.starts_with(b"\r\r") {
                2
            } else if rest.starts_with(b"\r\n") && i + 2 == bytes.len() {
                // Might become `\r\n\r\n`: wait for more.
                self.searched = i;
                return None;
            } else {
                continue;
            };
            return Some(Boundary {
                event_end: i,
                separator_len,
            });
        }
        self.searched = bytes.len();
        None
    }
}

/// Longest unfinished separator kept after an event: `\r\n\r` of `\r\n\r\n`.
const MAX_PARTIAL_SEPARATOR: usize = 3;

struct Boundary {
    event_end: usize,
    separator_len: usize,
}

fn parse_event(raw: &[u8]) -> Result<Option<Event>, SseError> {
    let text = std::str::from_utf8(raw).map_err(|_| SseError::InvalidUtf8)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut data: Option<String> = None;
    let mut other_lines = Vec::new();
    for line in text.split(['\n']).map(|l| l.trim_end_matches('\r')) {
        if line.is_empty() {
            continue;
        }
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match &mut data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => data = Some(value.to_string()),
            }
        } else {
            other_lines.push(line.to_string());
        }
    }
    Ok(Some(Event { data, other_lines }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: &str = ": keep-alive\n\ndata: {\"a\":\"h\u{e9}llo \u{1f600}\"}\n\nevent: x\r\ndata: one\r\ndata: two\r\n\r\ndata: [DONE]\n\n";

    fn parse_in_pieces(bytes: &[u8], cuts: &[usize]) -> Vec<Event> {
        let mut parser = Parser::new(1 << 20);
        let mut events = Vec::new();
        let mut last = 0;
        for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
            events.extend(parser.push(&bytes[last..cut]).unwrap());
            last = cut;
        }
        events.extend(parser.finish().unwrap());
        events
    }

    #[test]
    fn events_are_the_same_whatever_the_split_point() {
        let bytes = STREAM.as_bytes();
        let whole = parse_in_pieces(bytes, &[]);
        assert_eq!(whole.len(), 4);
        assert_eq!(whole[0].data, None);
        assert_eq!(whole[0].other_lines, vec![": keep-alive"]);
        assert_eq!(
            whole[1].data.as_deref(),
            Some("{\"a\":\"h\u{e9}llo \u{1f600}\"}")
        );
        assert_eq!(whole[2].data.as_deref(), Some("one\ntwo"));
        assert_eq!(whole[2].other_lines, vec!["event: x"]);
        assert_eq!(whole[3].data.as_deref(), Some("[DONE]"));
        for a in 0..bytes.len() {
            assert_eq!(parse_in_pieces(bytes, &[a]), whole, "split at {a}");
        }
        let every_byte: Vec<usize> = (1..bytes.len()).collect();
        assert_eq!(parse_in_pieces(bytes, &every_byte), whole);
    }

    #[test]
    fn last_event_without_blank_line_is_kept() {
        let events = parse_in_pieces(b"data: 1\n\ndata: 2", &[]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data.as_deref(), Some("2"));
    }

    #[test]
    fn oversized_event_and_invalid_utf8_are_errors() {
        let mut parser = Parser::new(16);
        assert_eq!(parser.push(&[b'x'; 20]), Err(SseError::EventTooLarge(16)));
        let mut parser = Parser::new(16);
        assert_eq!(parser.push(&[b'x'; 17]), Ok(vec![]));
        assert_eq!(parser.finish(), Err(SseError::EventTooLarge(16)));
        let mut parser = Parser::new(16);
        assert_eq!(parser.push(b"data: \xff\n\n"), Err(SseError::InvalidUtf8));
    }

    /// Found by `fuzz/` (target `sse`): a complete event over the limit was
    /// refused when it arrived in small pieces but accepted in one piece.
    #[test]
    fn fuzz_regression_limit_does_not_depend_on_the_split() {
        let bytes = b"data: aaaaaaaaaaaaaaaaaaaaaaaa\n\ndata: b\n\n";
        for cut in 0..=bytes.len() {
            let mut parser = Parser::new(8);
            let first = parser.push(&bytes[..cut]);
            let outcome = first.and_then(|_| parser.push(&bytes[cut..]));
            assert_eq!(outcome, Err(SseError::EventTooLarge(8)), "split at {cut}");
        }
        let mut parser = Parser::new(30);
        let events = parser.push(bytes).unwrap();
        assert_eq!(events.len(), 2);
        for cut in 0..=bytes.len() {
            assert_eq!(parse_in_pieces(bytes, &[cut]), events, "split at {cut}");
        }
    }

    #[test]
    fn encode_round_trips() {
        let event = Event {
            data: Some("a\nb".into()),
            other_lines: vec!["id: 7".into()],
        };
        let bytes = event.encode(event.data.as_deref());
        let back = parse_in_pieces(&bytes, &[]);
        assert_eq!(back, vec![event]);
    }
}
