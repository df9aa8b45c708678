//! The OpenAI wire format: request and response types that keep unknown
//! fields, text extraction with locations, and refusal bodies. No HTTP here.

pub mod extract;
pub mod refusal;
pub mod types;
