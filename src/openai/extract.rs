//! Finds every piece of text a model will read in a request (or wrote in an
//! answer), remembers where it was, and writes redacted text back to the
//! same place.

use std::borrow::Cow;

use serde_json::Value;

use super::types::{
    ChatMessage, ChatRequest, ChatResponse, CompletionRequest, CompletionResponse,
    EmbeddingRequest, MessageContent,
};
use crate::engine::Segment;
use crate::policy::Role;

/// Where a segment lives, precisely enough to rewrite it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// `messages[i].content` as a string (in an answer, `i` is the choice).
    Content { message: usize },
    /// `messages[i].content[j].text` (in an answer, `i` is the choice).
    Part { message: usize, part: usize },
    /// `messages[i].tool_calls[j].function.arguments`.
    ToolArguments { message: usize, call: usize },
    /// A string inside `messages[i].content` that is neither a string nor
    /// well-formed parts, by JSON pointer.
    ContentValue { message: usize, pointer: String },
    /// A string inside `tools[i]`, by JSON pointer.
    ToolDefinition { tool: usize, pointer: String },
    /// `prompt` / `input` as a single string.
    Single,
    /// `prompt[i]` / `input[i]`.
    Item { index: usize },
    /// `choices[i].text` of a legacy completion answer.
    Choice { choice: usize },
}

/// A segment plus its place.
pub type Located<'a> = (Segment<'a>, Place);

/// Maps an OpenAI role string to the policy's roles; unknown roles are
/// treated as user text so they get the strictest reading.
pub fn role_of(role: &str) -> Role {
    match role {
        "system" => Role::System,
        "developer" => Role::Developer,
        "assistant" => Role::Assistant,
        "tool" | "function" => Role::Tool,
        _ => Role::User,
    }
}

/// Every text of a chat request: all messages of all roles, text parts,
/// tool-call arguments and tool definition strings.
pub fn chat_segments(request: &ChatRequest) -> Vec<Located<'_>> {
    let mut out = Vec::new();
    for (i, message) in request.messages.iter().enumerate() {
        message_segments(i, message, &mut out);
    }
    for (t, tool) in request.tools.iter().flatten().enumerate() {
        let mut strings = Vec::new();
        collect_strings(tool, String::new(), &mut strings);
        for (pointer, text) in strings {
            let location = format!("tools[{t}]{}", pointer.replace('/', "."));
            out.push((
                Segment::new(Role::ToolDefinition, location, Cow::Borrowed(text)),
                Place::ToolDefinition { tool: t, pointer },
            ));
        }
    }
    out
}

fn message_segments<'a>(i: usize, message: &'a ChatMessage, out: &mut Vec<Located<'a>>) {
    let role = role_of(&message.role);
    if let Some(content) = &message.content {
        content_segments(role, &format!("messages[{i}].content"), i, content, out);
    }
    for (j, call) in message.tool_calls.iter().flatten().enumerate() {
        if let Some(arguments) = call.function.as_ref().and_then(|f| f.arguments.as_deref()) {
            let location = format!("messages[{i}].tool_calls[{j}].function.arguments");
            out.push((
                Segment::new(role, location, Cow::Borrowed(arguments)),
                Place::ToolArguments {
                    message: i,
                    call: j,
                },
            ));
        }
    }
}

/// Texts of one message's `content`, whichever shape it has. Requests and
/// answers share this so that no shape is scanned on one side only: a string,
/// typed parts, or anything else (a part with a duplicated key or a field of
/// the wrong type), which is still forwarded and which a lenient reader may
/// still show, so every string inside it is scanned.
fn content_segments<'a>(
    role: Role,
    base: &str,
    message: usize,
    content: &'a MessageContent,
    out: &mut Vec<Located<'a>>,
) {
    match content {
        MessageContent::Text(text) => out.push((
            Segment::new(role, base.to_owned(), Cow::Borrowed(text.as_str())),
            Place::Content { message },
        )),
        MessageContent::Parts(parts) => {
            for (part, text) in parts
                .iter()
                .enumerate()
                .filter_map(|(j, p)| p.text.as_deref().map(|t| (j, t)))
            {
                out.push((
                    Segment::new(role, format!("{base}[{part}].text"), Cow::Borrowed(text)),
                    Place::Part { message, part },
                ));
            }
        }
        MessageContent::Other(value) => {
            let mut strings = Vec::new();
            collect_strings(value, String::new(), &mut strings);
            for (pointer, text) in strings {
                let location = format!("{base}{}", pointer.replace('/', "."));
                out.push((
                    Segment::new(role, location, Cow::Borrowed(text)),
                    Place::ContentValue { message, pointer },
                ));
            }
        }
    }
}

/// Strings of a tool definition worth scanning: descriptions, names, enum
/// values, examples. Keys (`type`, `properties`) are structural, not prose.
fn collect_strings<'a>(value: &'a Value, pointer: String, out: &mut Vec<(String, &'a str)>) {
    match value {
        Value::String(s) if !s.is_empty() => out.push((pointer, s.as_str())),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect_strings(item, format!("{pointer}/{i}"), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                if key == "type" && item.is_string() {
                    continue;
                }
                collect_strings(
                    item,
                    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
}

/// Texts of a legacy completion prompt (strings only; token arrays are not text).
pub fn completion_segments(request: &CompletionRequest) -> Vec<Located<'_>> {
    request
        .prompt
        .as_ref()
        .map(|p| string_or_array(p, "prompt"))
        .unwrap_or_default()
}

/// Texts of an embeddings input.
pub fn embedding_segments(request: &EmbeddingRequest) -> Vec<Located<'_>> {
    string_or_array(&request.input, "input")
}

fn string_or_array<'a>(value: &'a Value, field: &str) -> Vec<Located<'a>> {
    match value {
        Value::String(s) => vec![(
            Segment::new(Role::User, field, Cow::Borrowed(s.as_str())),
            Place::Single,
        )],
        Value::Array(items) => items
            .iter()
            .enumerate()
            .filter_map(|(i, v)| {
                v.as_str().map(|s| {
                    (
                        Segment::new(Role::User, format!("{field}[{i}]"), Cow::Borrowed(s)),
                        Place::Item { index: i },
                    )
                })
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// Texts of a chat answer: each choice's content and tool-call arguments.
pub fn chat_response_segments(response: &ChatResponse) -> Vec<Located<'_>> {
    let mut out = Vec::new();
    for (c, choice) in response.choices.iter().enumerate() {
        let Some(message) = &choice.message else {
            continue;
        };
        if let Some(content) = &message.content {
            let base = format!("choices[{c}].message.content");
            content_segments(Role::Assistant, &base, c, content, &mut out);
        }
        for (j, call) in message.tool_calls.iter().flatten().enumerate() {
            if let Some(arguments) = call.function.as_ref().and_then(|f| f.arguments.as_deref()) {
                let location = format!("choices[{c}].message.tool_calls[{j}].function.arguments");
                out.push((
                    Segment::new(Role::Assistant, location, Cow::Borrowed(arguments)),
                    Place::ToolArguments {
                        message: c,
                        call: j,
                    },
                ));
            }
        }
    }
    out
}

/// Texts of a legacy completion answer.
pub fn completion_response_segments(response: &CompletionResponse) -> Vec<Located<'_>> {
    response
        .choices
        .iter()
        .enumerate()
        .filter_map(|(c, choice)| {
            choice.text.as_deref().map(|t| {
                (
                    Segment::new(
                        Role::Assistant,
                        format!("choices[{c}].text"),
                        Cow::Borrowed(t),
                    ),
                    Place::Choice { choice: c },
                )
            })
        })
        .collect()
}

/// Writes `text` to `place` in a chat request.
pub fn rewrite_chat(request: &mut ChatRequest, place: &Place, text: String) {
    match place {
        Place::Content { message }
        | Place::Part { message, .. }
        | Place::ContentValue { message, .. }
        | Place::ToolArguments { message, .. } => {
            if let Some(m) = request.messages.get_mut(*message) {
                rewrite_message(m, place, text);
            }
        }
        Place::ToolDefinition { tool, pointer } => {
            if let Some(target) = request
                .tools
                .as_mut()
                .and_then(|t| t.get_mut(*tool))
                .and_then(|t| t.pointer_mut(pointer))
            {
                *target = Value::String(text);
            }
        }
        Place::Single | Place::Item { .. } | Place::Choice { .. } => {}
    }
}

/// Writes `text` to a place inside one message (of a request or an answer).
fn rewrite_message(message: &mut ChatMessage, place: &Place, text: String) {
    match (place, message.content.as_mut()) {
        (Place::Content { .. }, _) => message.content = Some(MessageContent::Text(text)),
        (Place::Part { part, .. }, Some(MessageContent::Parts(parts))) => {
            if let Some(p) = parts.get_mut(*part) {
                p.text = Some(text);
            }
        }
        (Place::ContentValue { pointer, .. }, Some(MessageContent::Other(value))) => {
            if let Some(target) = value.pointer_mut(pointer) {
                *target = Value::String(text);
            }
        }
        (Place::ToolArguments { call, .. }, _) => set_tool_arguments(message, *call, text),
        _ => {}
    }
}

fn set_tool_arguments(message: &mut ChatMessage, call: usize, text: String) {
    if let Some(f) = message
        .tool_calls
        .as_mut()
        .and_then(|c| c.get_mut(call))
        .and_then(|c| c.function.as_mut())
    {
        f.arguments = Some(text);
    }
}

/// Writes `text` to `place` in a `prompt` / `input` value.
pub fn rewrite_value(value: &mut Value, place: &Place, text: String) {
    match place {
        Place::Single => *value = Value::String(text),
        Place::Item { index } => {
            if let Some(v) = value.as_array_mut().and_then(|a| a.get_mut(*index)) {
                *v = Value::String(text);
            }
        }
        _ => {}
    }
}

/// Writes `text` to `place` in a chat answer.
pub fn rewrite_chat_response(response: &mut ChatResponse, place: &Place, text: String) {
    if let Place::Content { message: choice }
    | Place::Part {
        message: choice, ..
    }
    | Place::ContentValue {
        message: choice, ..
    }
    | Place::ToolArguments {
        message: choice, ..
    } = place
        && let Some(m) = response
            .choices
            .get_mut(*choice)
            .and_then(|c| c.message.as_mut())
    {
        rewrite_message(m, place, text);
    }
}

/// Writes `text` to `place` in a legacy completion answer.
pub fn rewrite_completion_response(response: &mut CompletionResponse, place: &Place, text: String) {
    if let Place::Choice { choice } = place
        && let Some(c) = response.choices.get_mut(*choice)
    {
        c.text = Some(text);
    }
}

#[cfg(test)]
mod tests;
