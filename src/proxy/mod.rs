//! The proxy: thin HTTP handlers over the HTTP-free guard core, the upstream
//! client, and server-sent-event streaming.

pub mod auth;
pub mod body;
pub mod guard;
pub mod handlers;
pub mod policies;
pub mod sse;
pub mod state;
pub mod stream;
pub mod upstream;

pub use state::ProxyState;
