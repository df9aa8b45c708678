//! Proxy API keys: clients authenticate to Palisade with their own keys
//! (`Authorization: Bearer ...`); the upstream key never leaves the proxy.
//! Keys are kept only as SHA-256 digests and compared in constant time.

use sha2::{Digest, Sha256};

use crate::config::Config;

/// A known key: its id (for logs, metrics, audit) and optional policy set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIdentity {
    /// Key id.
    pub id: String,
    /// Policy set bound to the key.
    pub policy: Option<String>,
}

/// Every accepted key digest.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    keys: Vec<([u8; 32], KeyIdentity)>,
}

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The env var or file is malformed or missing.
    #[error("proxy API keys: {0}")]
    Invalid(String),
}

impl KeyStore {
    /// Collects keys from the config, the env var and the file.
    pub fn from_config(config: &Config) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for k in &config.auth.api_keys {
            keys.push((
                parse_digest(&k.sha256)
                    .ok_or_else(|| KeyError::Invalid(format!("`{}`: bad sha256", k.id)))?,
                KeyIdentity {
                    id: k.id.clone(),
                    policy: k.policy.clone(),
                },
            ));
        }
        if let Some(var) = &config.auth.api_keys_env {
            let value = std::env::var(var).map_err(|_| {
                KeyError::Invalid(format!("environment variable `{var}` is not set"))
            })?;
            for pair in value.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let (id, key) = pair.split_once(':').ok_or_else(|| {
                    KeyError::Invalid(format!("`{var}` entries must be `id:key`"))
                })?;
                keys.push((
                    digest(key),
                    KeyIdentity {
                        id: id.to_string(),
                        policy: None,
                    },
                ));
            }
        }
        if let Some(path) = &config.auth.api_keys_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| KeyError::Invalid(format!("{}: {e}", path.display())))?;
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let mut parts = line.split(':');
                let (Some(id), Some(hash)) = (parts.next(), parts.next()) else {
                    return Err(KeyError::Invalid(format!(
                        "{}:{}: expected `id:sha256hex[:policy]`",
                        path.display(),
                        n + 1
                    )));
                };
                let d = parse_digest(hash).ok_or_else(|| {
                    KeyError::Invalid(format!("{}:{}: bad sha256", path.display(), n + 1))
                })?;
                keys.push((
                    d,
                    KeyIdentity {
                        id: id.to_string(),
                        policy: parts.next().map(str::to_string),
                    },
                ));
            }
        }
        Ok(Self { keys })
    }

    /// Whether authentication is on.
    pub fn enabled(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The identity of a presented bearer token, if it is a known key.
    pub fn identify(&self, presented: &str) -> Option<&KeyIdentity> {
        let candidate = digest(presented);
        let mut found = None;
        for (d, identity) in &self.keys {
            if constant_time_eq(d, &candidate) {
                found = Some(identity);
            }
        }
        found
    }
}

/// The bearer token of an `Authorization` header value.
pub fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn parse_digest(hex_text: &str) -> Option<[u8; 32]> {
    let bytes = hex::decode(hex_text.trim()).ok()?;
    bytes.try_into().ok()
}

fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifies_hashed_keys_only() {
        let mut config = Config::builtin_default();
        let hash: String = Sha256::digest(b"pk-team-a")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        config.auth.api_keys.push(crate::config::ApiKeyConfig {
            id: "team-a".into(),
            sha256: hash,
            policy: None,
        });
        let store = KeyStore::from_config(&config).unwrap();
        assert!(store.enabled());
        assert_eq!(
            store.identify("pk-team-a").map(|k| k.id.as_str()),
            Some("team-a")
        );
        assert!(store.identify("pk-team-b").is_none());
        assert!(store.identify("").is_none());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
