//! OpenAI request and response bodies. Only the fields Palisade reads or
//! rewrites are typed; everything else lands in a flattened `extra` map and
//! is serialised back unchanged, so new OpenAI parameters keep working.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields we do not model, kept in their original order.
pub type Extra = Map<String, Value>;

/// A field that is present, even as `null`: `Some(value)`, so a rewritten
/// body serialises it back instead of dropping it (absent fields stay `None`
/// through `#[serde(default)]`).
fn present<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    T::deserialize(deserializer).map(Some)
}

/// `POST /v1/chat/completions` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatRequest {
    /// Model name; also picks the upstream.
    pub model: String,
    /// The conversation.
    pub messages: Vec<ChatMessage>,
    /// Server-sent events requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Tool definitions (their descriptions are model input too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Value>>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One message of a conversation.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatMessage {
    /// `system`, `developer`, `user`, `assistant`, `tool` or `function`.
    pub role: String,
    /// Text or an array of content parts; absent on some assistant messages
    /// (an explicit `null` is kept as [`MessageContent::Other`]).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    pub content: Option<MessageContent>,
    /// Tool calls of an assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall>>,
    /// Everything else (`name`, `tool_call_id`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// Message content: a string, an array of parts, or `null`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// Plain text.
    Text(String),
    /// Typed parts (`text`, `image_url`, `input_audio`, ...).
    Parts(Vec<ContentPart>),
    /// Anything else: forwarded untouched, and every string in it scanned.
    Other(Value),
}

/// One content part. Only `text` parts carry text we scan.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ContentPart {
    /// Part type.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The text of a `text` part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Everything else (`image_url`, ...).
    #[serde(flatten)]
    pub extra: Extra,
}

/// An assistant tool call.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ToolCall {
    /// The function called.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionCall>,
    /// `id`, `type`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

/// Function name and JSON-encoded arguments.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FunctionCall {
    /// Arguments as the model wrote them (a JSON string).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arguments: Option<String>,
    /// `name`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/completions` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompletionRequest {
    /// Model name.
    pub model: String,
    /// A string, an array of strings, or token arrays (not scanned).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<Value>,
    /// Server-sent events requested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v1/embeddings` body.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct EmbeddingRequest {
    /// Model name.
    pub model: String,
    /// A string, an array of strings, or token arrays (not scanned).
    pub input: Value,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A non-streamed chat completion.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatResponse {
    /// The answers.
    #[serde(default)]
    pub choices: Vec<ChatChoice>,
    /// `id`, `object`, `created`, `model`, `usage`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

/// One answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ChatChoice {
    /// The assistant message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<ChatMessage>,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// `index`, `logprobs`, ...
    #[serde(flatten)]
    pub extra: Extra,
}

/// A non-streamed legacy completion.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompletionResponse {
    /// The answers.
    #[serde(default)]
    pub choices: Vec<CompletionChoice>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One legacy completion answer.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct CompletionChoice {
    /// The generated text.
    #[serde(default)]
    pub text: Option<String>,
    /// Why generation stopped.
    #[serde(default)]
    pub finish_reason: Option<String>,
    /// Everything else.
    #[serde(flatten)]
    pub extra: Extra,
}
