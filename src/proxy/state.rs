//! Shared state of the proxy handlers: configuration, the current policy
//! (swappable for hot reload) and the upstream clients.

use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::error::ApiError;
use crate::policy::CompiledPolicy;

use super::upstream::UpstreamClient;

/// Cheap to clone; one per server.
#[derive(Clone)]
pub struct ProxyState {
    /// The loaded configuration.
    pub config: Arc<Config>,
    policy: Arc<RwLock<Arc<CompiledPolicy>>>,
    upstreams: Arc<Vec<UpstreamClient>>,
}

impl ProxyState {
    /// Builds the state and one pooled client per upstream.
    pub fn new(config: Config, policy: CompiledPolicy) -> Result<Self, ApiError> {
        let upstreams = config.upstreams.iter().map(UpstreamClient::new).collect::<Result<Vec<_>, _>>()?;
        Ok(Self { config: Arc::new(config), policy: Arc::new(RwLock::new(Arc::new(policy))), upstreams: Arc::new(upstreams) })
    }

    /// The policy in force now. A request keeps the `Arc` it took, so a
    /// reload never changes the rules under a request in flight.
    pub fn policy(&self) -> Arc<CompiledPolicy> {
        match self.policy.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Replaces the policy atomically for new requests.
    pub fn swap_policy(&self, policy: CompiledPolicy) {
        let new = Arc::new(policy);
        match self.policy.write() {
            Ok(mut guard) => *guard = new,
            Err(poisoned) => *poisoned.into_inner() = new,
        }
    }

    /// The upstream serving `model`.
    pub fn upstream_for(&self, model: Option<&str>) -> Result<&UpstreamClient, ApiError> {
        self.config
            .route(model)
            .and_then(|i| self.upstreams.get(i))
            .ok_or_else(|| ApiError::NoUpstream(model.unwrap_or("<none>").to_string()))
    }
}
