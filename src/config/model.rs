//! The configuration file's shape. Every struct rejects unknown keys.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{DEFAULT_POLICY_PATH, EnvOverrides};

/// The whole server configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080`.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Policy files to load, merged in order (each may `include` others).
    #[serde(default = "default_policies")]
    pub policies: Vec<PathBuf>,
    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Forward the client's `Authorization` header to the upstream instead of
    /// replacing it with the upstream's own key.
    #[serde(default)]
    pub forward_client_authorization: bool,
    /// Extra paths (exact, e.g. `/v1/files`) forwarded to the default upstream
    /// without scanning. Everything not listed and not modelled gets 404.
    #[serde(default)]
    pub passthrough_paths: Vec<String>,
    /// The models behind the proxy.
    #[serde(default)]
    pub upstreams: Vec<Upstream>,
    /// Named extra policies, selected per key, model or route.
    #[serde(default)]
    pub policy_sets: BTreeMap<String, Vec<PathBuf>>,
    /// Which policy set serves which model or route (first match wins;
    /// a key's own `policy` beats these; otherwise `policies`).
    #[serde(default)]
    pub policy_routes: Vec<PolicyRoute>,
    /// Shadow mode for everything: decisions are recorded, nothing is enforced.
    #[serde(default)]
    pub monitor: bool,
    /// What an internal error in the guard does: refuse (`closed`) or forward unscanned (`open`).
    #[serde(default)]
    pub fail_mode: FailMode,
    /// Proxy API keys and unauthenticated paths.
    #[serde(default)]
    pub auth: AuthConfig,
    /// Audit log.
    #[serde(default)]
    pub audit: AuditConfig,
    /// Seconds between checks of the policy files for changes (0 = only on SIGHUP).
    #[serde(default = "default_reload_poll")]
    pub reload_poll_secs: u64,
    /// Requests handled at once; beyond this, 503 with `Retry-After` instead
    /// of an unbounded queue (0 = no limit).
    #[serde(default = "default_concurrency")]
    pub max_concurrent_requests: usize,
    /// Memory for remembering what the policy found in texts already seen
    /// (the system prompt and earlier turns that every chat call sends
    /// again), in MiB per policy; 0 turns the cache off. Results are the
    /// same with or without it.
    #[serde(default = "default_detection_cache_mb")]
    pub detection_cache_mb: usize,
    /// Seconds in-flight requests get to finish after SIGTERM.
    #[serde(default = "default_grace")]
    pub shutdown_grace_secs: u64,
    /// Largest request head (request line + headers) in bytes; larger gets
    /// 431. Bounds the memory one connection can pin before any handler runs.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Seconds a connection gets to send a complete request head. The same
    /// timer bounds a connection that says nothing and an idle keep-alive
    /// connection between requests, so slowloris clients cannot hold sockets.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout_secs: u64,
    /// Seconds the client gets to send the whole request body (408 after);
    /// a client dribbling its body would otherwise hold a concurrency permit.
    #[serde(default = "default_request_body_timeout")]
    pub request_body_timeout_secs: u64,
    /// Seconds from the request head until the response head (504 after).
    /// For a non-streamed answer that is the whole exchange including the
    /// upstream wait; for a stream, until the upstream starts answering
    /// (the stream itself is bounded by `max_stream_secs`).
    #[serde(default = "default_request_timeout")]
    pub request_timeout_secs: u64,
    /// Largest non-streamed upstream answer buffered, in bytes (502 beyond):
    /// answers are read whole to be scanned, so this bounds memory per request.
    #[serde(default = "default_max_upstream_body")]
    pub max_upstream_body_bytes: usize,
    /// Seconds a write to a client may make no progress before its
    /// connection is closed: a client that stops reading would otherwise
    /// pin its connection and the response buffered for it.
    #[serde(default = "default_client_write_timeout")]
    pub client_write_timeout_secs: u64,
    /// Seconds a streamed answer may last; then it ends with an error event.
    /// An upstream that keeps sending (or a client that reads too slowly)
    /// would otherwise hold the stream forever.
    #[serde(default = "default_max_stream")]
    pub max_stream_secs: u64,
}

/// Internal-error behaviour.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailMode {
    /// Refuse the request (default): an unscanned answer is never released.
    #[default]
    Closed,
    /// Forward unscanned, and say so in headers and metrics.
    Open,
}

/// Selects a policy set for requests by model and/or route.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRoute {
    /// Model name pattern (`*` suffix = prefix match).
    #[serde(default)]
    pub model: Option<String>,
    /// Exact route path (`/v1/embeddings`).
    #[serde(default)]
    pub route: Option<String>,
    /// Name of a `policy_sets` entry.
    pub policy: String,
}

/// Proxy API keys.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// Keys stored as SHA-256 hex digests.
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    /// Environment variable with `id:key` pairs separated by commas (plain keys).
    #[serde(default)]
    pub api_keys_env: Option<String>,
    /// File with one `id:sha256hex` per line (`#` comments allowed).
    #[serde(default)]
    pub api_keys_file: Option<PathBuf>,
    /// Paths served without a key (default `/healthz`, `/readyz`, `/metrics`).
    #[serde(default = "default_open_paths")]
    pub open_paths: Vec<String>,
}

/// One proxy API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Name in logs, metrics and audit (never the key).
    pub id: String,
    /// SHA-256 of the key, lowercase hex (`printf %s "$KEY" | sha256sum`).
    pub sha256: String,
    /// Policy set for this key.
    #[serde(default)]
    pub policy: Option<String>,
}

/// Audit log settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// `off` (default), `stdout`, or a file path.
    #[serde(default)]
    pub sink: Option<String>,
    /// Also record raw text (off by default: only length and hash).
    #[serde(default)]
    pub include_text: bool,
    /// Also record allowed requests.
    #[serde(default)]
    pub include_allowed: bool,
}

/// One OpenAI-compatible model server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upstream {
    /// A name for logs and errors.
    pub name: String,
    /// Base URL including the version prefix, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// Name of the environment variable holding this upstream's API key.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// The key itself, resolved at load time (never in the file).
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Seconds to wait for a TCP/TLS connection.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Seconds to wait for the upstream between reads (whole response for non-streams).
    #[serde(default = "default_read_timeout")]
    pub read_timeout_secs: u64,
    /// Model names routed here; `*` at the end matches a prefix (`gpt-*`).
    #[serde(default)]
    pub models: Vec<String>,
    /// Receives every model no other upstream claims.
    #[serde(default)]
    pub default: bool,
}

fn default_open_paths() -> Vec<String> {
    vec!["/healthz".into(), "/readyz".into(), "/metrics".into()]
}
fn default_reload_poll() -> u64 {
    2
}
fn default_detection_cache_mb() -> usize {
    16
}
fn default_concurrency() -> usize {
    4096
}
fn default_grace() -> u64 {
    30
}
fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}
fn default_policies() -> Vec<PathBuf> {
    vec![PathBuf::from(DEFAULT_POLICY_PATH)]
}
fn default_max_body() -> usize {
    4 * 1024 * 1024
}
fn default_max_header_bytes() -> usize {
    64 * 1024
}
fn default_header_read_timeout() -> u64 {
    10
}
fn default_request_body_timeout() -> u64 {
    30
}
fn default_request_timeout() -> u64 {
    600
}
fn default_max_upstream_body() -> usize {
    64 * 1024 * 1024
}
fn default_client_write_timeout() -> u64 {
    60
}
fn default_max_stream() -> u64 {
    3600
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_read_timeout() -> u64 {
    300
}

impl Config {
    /// `detection_cache_mb` in bytes.
    pub fn detection_cache_bytes(&self) -> usize {
        self.detection_cache_mb.saturating_mul(1024 * 1024)
    }

    /// The configuration used when there is no file: the default policy and
    /// one upstream taken from the environment (or OpenAI).
    pub fn builtin_default() -> Self {
        Self {
            listen: default_listen(),
            policies: default_policies(),
            max_body_bytes: default_max_body(),
            forward_client_authorization: false,
            passthrough_paths: Vec::new(),
            policy_sets: BTreeMap::new(),
            policy_routes: Vec::new(),
            monitor: false,
            fail_mode: FailMode::Closed,
            auth: AuthConfig {
                open_paths: default_open_paths(),
                ..AuthConfig::default()
            },
            audit: AuditConfig::default(),
            reload_poll_secs: default_reload_poll(),
            shutdown_grace_secs: default_grace(),
            max_concurrent_requests: default_concurrency(),
            detection_cache_mb: default_detection_cache_mb(),
            max_header_bytes: default_max_header_bytes(),
            header_read_timeout_secs: default_header_read_timeout(),
            request_body_timeout_secs: default_request_body_timeout(),
            request_timeout_secs: default_request_timeout(),
            max_upstream_body_bytes: default_max_upstream_body(),
            client_write_timeout_secs: default_client_write_timeout(),
            max_stream_secs: default_max_stream(),
            upstreams: vec![Upstream {
                name: "default".to_string(),
                base_url: "https://api.openai.com/v1".to_string(),
                api_key_env: Some("OPENAI_API_KEY".to_string()),
                api_key: None,
                connect_timeout_secs: default_connect_timeout(),
                read_timeout_secs: default_read_timeout(),
                models: Vec::new(),
                default: true,
            }],
        }
    }

    pub(super) fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.policies.iter_mut().for_each(resolve);
        self.policy_sets.values_mut().flatten().for_each(resolve);
        if let Some(file) = self.auth.api_keys_file.as_mut() {
            resolve(file);
        }
    }

    pub(super) fn apply_env(&mut self, env: &EnvOverrides) {
        for upstream in &mut self.upstreams {
            upstream.api_key = upstream
                .api_key_env
                .as_deref()
                .and_then(|name| std::env::var(name).ok())
                .filter(|k| !k.is_empty());
        }
        if let Some(listen) = &env.listen {
            self.listen = listen.clone();
        }
        if let Some(url) = &env.upstream_url {
            match self.default_upstream_index() {
                Some(i) => self.upstreams[i].base_url = url.clone(),
                None => {
                    let mut upstream = Self::builtin_default().upstreams.remove(0);
                    upstream.base_url = url.clone();
                    upstream.api_key_env = None;
                    self.upstreams.push(upstream);
                }
            }
        }
        if let Some(key) = &env.upstream_api_key
            && let Some(i) = self.default_upstream_index()
        {
            self.upstreams[i].api_key = Some(key.clone());
        }
    }

    fn default_upstream_index(&self) -> Option<usize> {
        self.upstreams
            .iter()
            .position(|u| u.default)
            .or(if self.upstreams.len() == 1 {
                Some(0)
            } else {
                None
            })
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "`listen` must be an address like 127.0.0.1:8080, got `{}`",
                self.listen
            ));
        }
        if self.upstreams.is_empty() {
            return Err(
                "`upstreams` is empty: configure at least one, or set PALISADE_UPSTREAM_URL".into(),
            );
        }
        if self.policies.is_empty() {
            return Err("`policies` is empty: list at least one policy file".into());
        }
        if self.max_body_bytes == 0 {
            return Err("`max_body_bytes` must be greater than 0".into());
        }
        // hyper refuses (panics on) a head buffer below 8 KiB.
        if self.max_header_bytes < 8192 {
            return Err("`max_header_bytes` must be at least 8192".into());
        }
        if self.max_upstream_body_bytes == 0 {
            return Err("`max_upstream_body_bytes` must be greater than 0".into());
        }
        for (key, secs) in [
            ("header_read_timeout_secs", self.header_read_timeout_secs),
            ("request_body_timeout_secs", self.request_body_timeout_secs),
            ("request_timeout_secs", self.request_timeout_secs),
            ("client_write_timeout_secs", self.client_write_timeout_secs),
            ("max_stream_secs", self.max_stream_secs),
        ] {
            if secs == 0 {
                return Err(format!("`{key}` must be at least 1 second"));
            }
        }
        let defaults = self.upstreams.iter().filter(|u| u.default).count();
        if defaults > 1 {
            return Err("more than one upstream has `default: true`".into());
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            let url = reqwest::Url::parse(&u.base_url).map_err(|e| {
                format!(
                    "upstreams[{i}] `{}`: base_url `{}` is not a URL: {e}",
                    u.name, u.base_url
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!(
                    "upstreams[{i}] `{}`: base_url must be http or https",
                    u.name
                ));
            }
            if u.connect_timeout_secs == 0 || u.read_timeout_secs == 0 {
                return Err(format!(
                    "upstreams[{i}] `{}`: timeouts must be at least 1 second",
                    u.name
                ));
            }
        }
        for route in &self.policy_routes {
            if !self.policy_sets.contains_key(&route.policy) {
                return Err(format!(
                    "policy_routes: unknown policy set `{}` (define it under `policy_sets`)",
                    route.policy
                ));
            }
        }
        for key in &self.auth.api_keys {
            if key.sha256.len() != 64 || !key.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "auth.api_keys `{}`: sha256 must be 64 hex characters",
                    key.id
                ));
            }
            if let Some(policy) = &key.policy
                && !self.policy_sets.contains_key(policy)
            {
                return Err(format!(
                    "auth.api_keys `{}`: unknown policy set `{policy}`",
                    key.id
                ));
            }
        }
        if self.forward_client_authorization && self.auth_configured() {
            return Err("`forward_client_authorization: true` cannot be combined with proxy API keys: the client's key is the proxy key and must not reach the upstream".into());
        }
        for p in &self.passthrough_paths {
            if !p.starts_with('/') {
                return Err(format!("passthrough path `{p}` must start with `/`"));
            }
        }
        Ok(())
    }

    /// Whether any proxy API key source is configured.
    pub fn auth_configured(&self) -> bool {
        !self.auth.api_keys.is_empty()
            || self.auth.api_keys_env.is_some()
            || self.auth.api_keys_file.is_some()
    }

    /// The policy set for a request: the key's own, then the first matching
    /// route, else `None` (the default `policies`).
    pub fn policy_set_for(
        &self,
        key_policy: Option<&str>,
        model: Option<&str>,
        route: &str,
    ) -> Option<String> {
        if let Some(policy) = key_policy {
            return Some(policy.to_string());
        }
        self.policy_routes
            .iter()
            .find(|r| {
                r.route.as_deref().is_none_or(|p| p == route)
                    && r.model
                        .as_deref()
                        .is_none_or(|m| model.is_some_and(|model| model_matches(m, model)))
            })
            .map(|r| r.policy.clone())
    }

    /// Picks the upstream for a model name: an explicit `models` match first,
    /// then the default upstream, then the only upstream.
    pub fn route(&self, model: Option<&str>) -> Option<usize> {
        if let Some(model) = model {
            let claimed = self
                .upstreams
                .iter()
                .position(|u| u.models.iter().any(|pattern| model_matches(pattern, model)));
            if claimed.is_some() {
                return claimed;
            }
        }
        self.default_upstream_index()
    }
}

/// `gpt-*` matches by prefix; anything else exactly.
fn model_matches(pattern: &str, model: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => model.starts_with(prefix),
        None => pattern == model,
    }
}
