//! Palisade: an OpenAI-compatible safety guardrail proxy.
//!
//! The modules follow the flow of a request: configuration → policy model and
//! compiler → detectors → decision engine → OpenAI wire types → proxy handlers
//! and streaming → server and telemetry. Each module only uses the ones before it.

#![forbid(unsafe_code)]

pub mod cli;
pub mod config;
pub mod detect;
pub mod engine;
pub mod error;
pub mod openai;
pub mod policy;
pub mod proxy;
pub mod server;
pub mod telemetry;
pub mod yaml;
