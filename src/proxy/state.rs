//! Shared state of the proxy handlers: configuration, the current policies
//! (swappable for hot reload), upstream clients, proxy keys, metrics and
//! the audit log.

use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::engine::SegmentCache;
use crate::error::ApiError;
use crate::policy::CompiledPolicy;
use crate::telemetry::audit::{AuditLog, AuditSink};
use crate::telemetry::metrics::Metrics;

use super::auth::{KeyIdentity, KeyStore};
use super::policies::Policies;
use super::upstream::UpstreamClient;

/// Why the proxy could not be assembled from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// An upstream client could not be built.
    #[error(transparent)]
    Upstream(#[from] ApiError),
    /// Proxy API keys could not be loaded.
    #[error(transparent)]
    Keys(#[from] super::auth::KeyError),
    /// The audit log could not be opened.
    #[error("audit log: {0}")]
    Audit(std::io::Error),
}

/// Shared state of one server. Every middleware layer and handler clones it,
/// so it is one `Arc` (one atomic increment per clone); fields are reached
/// through `Deref` to [`StateInner`].
#[derive(Clone)]
pub struct ProxyState(Arc<StateInner>);

impl std::ops::Deref for ProxyState {
    type Target = StateInner;

    fn deref(&self) -> &StateInner {
        &self.0
    }
}

/// What [`ProxyState`] holds.
pub struct StateInner {
    /// The loaded configuration.
    pub config: Arc<Config>,
    policies: RwLock<Arc<Policies>>,
    upstreams: Vec<UpstreamClient>,
    /// Accepted proxy API keys.
    pub keys: Arc<KeyStore>,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// Audit log writer.
    pub audit: AuditLog,
    /// Permits for requests in flight (`None` = unlimited).
    pub concurrency: Option<Arc<tokio::sync::Semaphore>>,
}

impl ProxyState {
    /// Builds the state with one policy as the default.
    pub fn new(config: Config, policy: CompiledPolicy) -> Result<Self, StartError> {
        Self::with_policies(config, Policies::single(policy))
    }

    /// Builds the state with a full policy set.
    pub fn with_policies(config: Config, mut policies: Policies) -> Result<Self, StartError> {
        let upstreams = config
            .upstreams
            .iter()
            .map(UpstreamClient::new)
            .collect::<Result<Vec<_>, _>>()?;
        let keys = KeyStore::from_config(&config)?;
        let sink = match config.audit.sink.as_deref() {
            None | Some("off") => AuditSink::Off,
            Some("stdout") => AuditSink::Stdout,
            Some(path) => AuditSink::File(path.into()),
        };
        let audit = AuditLog::open(
            &sink,
            config.audit.include_text,
            config.audit.include_allowed,
        )
        .map_err(StartError::Audit)?;
        if config.monitor {
            policies = policies.into_monitor();
        }
        let policies = policies.with_caches(config.detection_cache_bytes());
        let config_limit = config.max_concurrent_requests;
        Ok(Self(Arc::new(StateInner {
            config: Arc::new(config),
            policies: RwLock::new(Arc::new(policies)),
            upstreams,
            keys: Arc::new(keys),
            metrics: Arc::new(Metrics::new()),
            audit,
            concurrency: (config_limit > 0)
                .then(|| Arc::new(tokio::sync::Semaphore::new(config_limit))),
        })))
    }

    /// All policies in force now.
    pub fn policies(&self) -> Arc<Policies> {
        match self.policies.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The default policy in force now.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        self.policies().default.clone()
    }

    /// The policy for a request. A request keeps the `Arc` it took, so a
    /// reload never changes the rules under a request in flight.
    pub fn policy_for(
        &self,
        key: Option<&KeyIdentity>,
        model: Option<&str>,
        route: &str,
    ) -> Arc<CompiledPolicy> {
        let name = self
            .config
            .policy_set_for(key.and_then(|k| k.policy.as_deref()), model, route);
        self.policies().get(name.as_deref())
    }

    /// The detection cache of `policy`, if it is still in force and caching
    /// is on.
    pub fn cache_for(&self, policy: &Arc<CompiledPolicy>) -> Option<Arc<SegmentCache>> {
        self.policies().cache_for(policy)
    }

    /// Replaces every policy atomically for new requests.
    pub fn swap_policies(&self, policies: Policies) {
        let policies = if self.config.monitor {
            policies.into_monitor()
        } else {
            policies
        };
        let new = Arc::new(policies.with_caches(self.config.detection_cache_bytes()));
        match self.policies.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// Replaces the default policy (keeping named sets).
    pub fn swap_policy(&self, policy: CompiledPolicy) {
        let mut policies = (*self.policies()).clone();
        policies.default = Arc::new(policy);
        self.swap_policies(policies);
    }

    /// The upstream serving `model`.
    pub fn upstream_for(&self, model: Option<&str>) -> Result<&UpstreamClient, ApiError> {
        self.config
            .route(model)
            .and_then(|i| self.upstreams.get(i))
            .ok_or_else(|| ApiError::NoUpstream(model.unwrap_or("<none>").to_string()))
    }
}
