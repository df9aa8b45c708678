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
///
/// Lines may end in `\n`, `\r\n` or a lone `\r` (all three are valid SSE,
/// and mixed endings occur behind some gateways); an empty line ends an event.
#[derive(Debug)]
pub struct Parser {
    buffer: BytesMut,
    /// Where the unfinished line of `buffer` starts.
    line_start: usize,
    /// Bytes of `buffer` already searched for a line end.
    searched: usize,
    max_event_bytes: usize,
}

impl Parser {
    /// A parser that refuses events longer than `max_event_bytes`.
    pub fn new(max_event_bytes: usize) -> Self {
        Self {
            buffer: BytesMut::new(),
            line_start: 0,
            searched: 0,
            max_event_bytes,
        }
    }

    /// Adds bytes and returns every event they complete. Each byte is
    /// examined once for a line end, so parsing is linear in the stream.
    ///
    /// The size limit applies to each event however the bytes were split: a
    /// complete event over the limit is refused too, and an unfinished one as
    /// soon as it cannot fit any more (the buffer may also hold the end of its
    /// last line and part of the blank line that will close it).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        self.buffer.extend_from_slice(bytes);
        let mut events = Vec::new();
        while let Some(end) = self.boundary() {
            let raw = self.buffer.split_to(end.event_end);
            let _separator = self.buffer.split_to(end.separator_len);
            self.line_start = 0;
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
        self.line_start = 0;
        self.searched = 0;
        self.parse(&raw)
    }

    fn parse(&self, raw: &[u8]) -> Result<Option<Event>, SseError> {
        if without_line_end(raw).len() > self.max_event_bytes {
            return Err(SseError::EventTooLarge(self.max_event_bytes));
        }
        parse_event(raw)
    }

    /// Finds the next empty line: the event is everything before it.
    fn boundary(&mut self) -> Option<Boundary> {
        loop {
            let (at, len) = match line_end(&self.buffer, self.searched) {
                LineEnd::At { at, len } => (at, len),
                LineEnd::Pending { resume } => {
                    self.searched = resume;
                    return None;
                }
            };
            if at == self.line_start {
                return Some(Boundary {
                    event_end: at,
                    separator_len: len,
                });
            }
            self.line_start = at + len;
            self.searched = at + len;
        }
    }
}

/// Longest tail kept beyond an event's own bytes: the `\r\n` ending its last
/// line and the `\r` that may start the closing `\r\n`.
const MAX_PARTIAL_SEPARATOR: usize = 3;

struct Boundary {
    event_end: usize,
    separator_len: usize,
}

enum LineEnd {
    /// A line end of `len` bytes at `at`.
    At { at: usize, len: usize },
    /// None yet; search again from `resume` when more bytes arrive (a `\r`
    /// as the last byte may turn out to be half of `\r\n`).
    Pending { resume: usize },
}

fn line_end(bytes: &[u8], from: usize) -> LineEnd {
    let Some(offset) = bytes[from..].iter().position(|&b| b == b'\n' || b == b'\r') else {
        return LineEnd::Pending {
            resume: bytes.len(),
        };
    };
    let at = from + offset;
    match (bytes[at], bytes.get(at + 1)) {
        (b'\r', None) => LineEnd::Pending { resume: at },
        (b'\r', Some(b'\n')) => LineEnd::At { at, len: 2 },
        _ => LineEnd::At { at, len: 1 },
    }
}

/// `raw` without the line end of its last line, which is not part of the
/// event's size.
fn without_line_end(raw: &[u8]) -> &[u8] {
    let raw = raw.strip_suffix(b"\n").unwrap_or(raw);
    raw.strip_suffix(b"\r").unwrap_or(raw)
}

fn parse_event(raw: &[u8]) -> Result<Option<Event>, SseError> {
    let text = std::str::from_utf8(raw).map_err(|_| SseError::InvalidUtf8)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let mut data: Option<String> = None;
    let mut other_lines = Vec::new();
    for line in text.split(['\n', '\r']) {
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

    /// Every mix of `\n`, `\r\n` and lone `\r` line ends, as the SSE
    /// specification allows, at every split point.
    #[test]
    fn mixed_line_ends_give_the_same_events_at_every_split() {
        let bytes =
            b"data: a\n\r\ndata: b\r\n\ndata: c\r\rid: 4\rdata: d\n\rdata: e\r\n\rdata: f\r\n\r\n";
        let whole = parse_in_pieces(bytes, &[]);
        let data: Vec<Option<&str>> = whole.iter().map(|e| e.data.as_deref()).collect();
        assert_eq!(
            data,
            [
                Some("a"),
                Some("b"),
                Some("c"),
                Some("d"),
                Some("e"),
                Some("f")
            ]
        );
        assert_eq!(whole[3].other_lines, vec!["id: 4"]);
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
