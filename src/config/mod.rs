//! Server configuration: the YAML file an operator writes, loaded strictly,
//! with environment overrides for the sidecar case.
//!
//! Paths inside the file (policies) are resolved relative to the file's own
//! directory so a config can be mounted anywhere together with its policies.

mod model;

pub use model::{ApiKeyConfig, AuditConfig, AuthConfig, Config, FailMode, PolicyRoute, Upstream};

use std::path::{Path, PathBuf};

use crate::yaml::{self, YamlError};

/// Default location of the server configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "config/palisade.yaml";
/// Policy used when no configuration file exists.
pub const DEFAULT_POLICY_PATH: &str = "policies/default.yaml";

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The YAML did not parse or had unknown / mistyped keys.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// The file parsed but its values do not make a working proxy.
    #[error("{file}: {message}")]
    Invalid {
        /// The configuration file (or `<environment>`).
        file: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

/// Environment variables that override the file (read once at start).
#[derive(Debug, Default, Clone)]
pub struct EnvOverrides {
    /// `PALISADE_LISTEN`
    pub listen: Option<String>,
    /// `PALISADE_UPSTREAM_URL`
    pub upstream_url: Option<String>,
    /// `PALISADE_UPSTREAM_API_KEY`
    pub upstream_api_key: Option<String>,
}

impl EnvOverrides {
    /// Reads the overrides from the process environment; empty values are ignored.
    pub fn from_env() -> Self {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            listen: get("PALISADE_LISTEN"),
            upstream_url: get("PALISADE_UPSTREAM_URL"),
            upstream_api_key: get("PALISADE_UPSTREAM_API_KEY"),
        }
    }
}

/// Loads the configuration. With `path == None` the default path is used if
/// it exists, and built-in defaults otherwise (sidecar with env vars only).
pub fn load(path: Option<&Path>, env: &EnvOverrides) -> Result<Config, ConfigError> {
    let (mut config, origin) = match path {
        Some(p) => (yaml::load_file::<Config>(p)?, Some(p.to_path_buf())),
        None if Path::new(DEFAULT_CONFIG_PATH).exists() => {
            let p = PathBuf::from(DEFAULT_CONFIG_PATH);
            (yaml::load_file::<Config>(&p)?, Some(p))
        }
        None => (Config::builtin_default(), None),
    };
    let label = origin
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<built-in defaults>".to_string());
    if let Some(origin) = &origin {
        let base = origin.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
    }
    config.apply_env(env);
    config.validate().map_err(|message| ConfigError::Invalid {
        file: label,
        message,
    })?;
    Ok(config)
}

#[cfg(test)]
mod tests;
