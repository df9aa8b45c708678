//! The configuration file's shape. Every struct rejects unknown keys.

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

fn default_listen() -> String {
    "127.0.0.1:8080".to_string()
}
fn default_policies() -> Vec<PathBuf> {
    vec![PathBuf::from(DEFAULT_POLICY_PATH)]
}
fn default_max_body() -> usize {
    4 * 1024 * 1024
}
fn default_connect_timeout() -> u64 {
    5
}
fn default_read_timeout() -> u64 {
    300
}

impl Config {
    /// The configuration used when there is no file: the default policy and
    /// one upstream taken from the environment (or OpenAI).
    pub fn builtin_default() -> Self {
        Self {
            listen: default_listen(),
            policies: default_policies(),
            max_body_bytes: default_max_body(),
            forward_client_authorization: false,
            passthrough_paths: Vec::new(),
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
        for policy in &mut self.policies {
            if policy.is_relative() {
                *policy = base.join(&*policy);
            }
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
            .or(if self.upstreams.len() == 1 { Some(0) } else { None })
    }

    pub(super) fn validate(&self) -> Result<(), String> {
        if self.listen.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!("`listen` must be an address like 127.0.0.1:8080, got `{}`", self.listen));
        }
        if self.upstreams.is_empty() {
            return Err("`upstreams` is empty: configure at least one, or set PALISADE_UPSTREAM_URL".into());
        }
        if self.policies.is_empty() {
            return Err("`policies` is empty: list at least one policy file".into());
        }
        if self.max_body_bytes == 0 {
            return Err("`max_body_bytes` must be greater than 0".into());
        }
        let defaults = self.upstreams.iter().filter(|u| u.default).count();
        if defaults > 1 {
            return Err("more than one upstream has `default: true`".into());
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            let url = reqwest::Url::parse(&u.base_url)
                .map_err(|e| format!("upstreams[{i}] `{}`: base_url `{}` is not a URL: {e}", u.name, u.base_url))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err(format!("upstreams[{i}] `{}`: base_url must be http or https", u.name));
            }
            if u.connect_timeout_secs == 0 || u.read_timeout_secs == 0 {
                return Err(format!("upstreams[{i}] `{}`: timeouts must be at least 1 second", u.name));
            }
        }
        for p in &self.passthrough_paths {
            if !p.starts_with('/') {
                return Err(format!("passthrough path `{p}` must start with `/`"));
            }
        }
        Ok(())
    }

    /// Picks the upstream for a model name: an explicit `models` match first,
    /// then the default upstream, then the only upstream.
    pub fn route(&self, model: Option<&str>) -> Option<usize> {
        if let Some(model) = model {
            let claimed = self.upstreams.iter().position(|u| {
                u.models.iter().any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => model.starts_with(prefix),
                    None => pattern == model,
                })
            });
            if claimed.is_some() {
                return claimed;
            }
        }
        self.default_upstream_index()
    }
}
