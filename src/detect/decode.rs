//! TEMPORARY: replaced by the full decoder in the next commit.
/// Encodings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding { Base64, Hex, Url, Rot13, Reversed }
impl Encoding { /// name
    pub fn as_str(&self) -> &'static str { match self { Encoding::Base64 => "base64", Encoding::Hex => "hex", Encoding::Url => "url", Encoding::Rot13 => "rot13", Encoding::Reversed => "reversed" } } }
/// Limits.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits { pub max_depth: u8, pub max_output_bytes: usize, pub min_encoded_len: usize, pub max_candidates: usize }
impl Default for DecodeLimits { fn default() -> Self { Self { max_depth: 3, max_output_bytes: 65536, min_encoded_len: 16, max_candidates: 32 } } }
/// A decoded payload.
#[derive(Debug, Clone)]
pub struct Decoded { pub chain: Vec<Encoding>, pub text: String, pub span: std::ops::Range<usize> }
/// Decodes.
pub fn decode_payloads(_input: &str, _limits: &DecodeLimits) -> Vec<Decoded> { Vec::new() }
