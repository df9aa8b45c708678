//! The set of compiled policies a server serves: the default and any named
//! `policy_sets`, loaded together so a reload swaps all of them at once or
//! none.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::Config;
use crate::engine::{CacheStats, SegmentCache};
use crate::policy::{CompiledPolicy, PolicyError};

/// All policies of one configuration.
#[derive(Debug, Clone)]
pub struct Policies {
    /// Used when no key, model or route selects another.
    pub default: Arc<CompiledPolicy>,
    /// Named policy sets.
    pub named: BTreeMap<String, Arc<CompiledPolicy>>,
    /// The detection cache of each policy above (see [`Self::with_caches`]).
    caches: Vec<(Arc<CompiledPolicy>, Arc<SegmentCache>)>,
}

impl Policies {
    /// Wraps one policy as the default with no named sets.
    pub fn single(policy: CompiledPolicy) -> Self {
        Self {
            default: Arc::new(policy),
            named: BTreeMap::new(),
            caches: Vec::new(),
        }
    }

    /// Loads and compiles every policy the configuration names.
    pub fn load(config: &Config) -> Result<Self, PolicyError> {
        let default = Arc::new(crate::policy::load(&config.policies)?);
        let mut named = BTreeMap::new();
        for (name, paths) in &config.policy_sets {
            named.insert(name.clone(), Arc::new(crate::policy::load(paths)?));
        }
        Ok(Self {
            default,
            named,
            caches: Vec::new(),
        })
    }

    /// Every policy in shadow mode (the configuration's `monitor: true`).
    pub fn into_monitor(self) -> Self {
        let shadow = |p: Arc<CompiledPolicy>| {
            let mut owned = Arc::unwrap_or_clone(p);
            owned.rules.iter_mut().for_each(|r| r.monitor = true);
            Arc::new(owned)
        };
        Self {
            default: shadow(self.default),
            named: self
                .named
                .into_iter()
                .map(|(k, v)| (k, shadow(v)))
                .collect(),
            caches: Vec::new(),
        }
    }

    /// Gives each policy a fresh detection cache of `budget_bytes` (0: no
    /// cache). A cache belongs to the exact policy it was made for, so a
    /// reloaded or changed policy always starts with an empty one.
    pub fn with_caches(mut self, budget_bytes: usize) -> Self {
        self.caches = if budget_bytes == 0 {
            Vec::new()
        } else {
            std::iter::once(&self.default)
                .chain(self.named.values())
                .map(|p| (p.clone(), Arc::new(SegmentCache::new(budget_bytes))))
                .collect()
        };
        self
    }

    /// Hits and misses of every detection cache, and the bytes they hold.
    pub fn cache_totals(&self) -> (CacheStats, usize) {
        self.caches
            .iter()
            .fold((CacheStats::default(), 0), |(mut stats, bytes), (_, c)| {
                let s = c.stats();
                stats.hits += s.hits;
                stats.misses += s.misses;
                (stats, bytes + c.held_bytes())
            })
    }

    /// The detection cache made for `policy` (this very `Arc`), if any.
    pub fn cache_for(&self, policy: &Arc<CompiledPolicy>) -> Option<Arc<SegmentCache>> {
        self.caches
            .iter()
            .find(|(p, _)| Arc::ptr_eq(p, policy))
            .map(|(_, cache)| cache.clone())
    }

    /// The policy called `name`, or the default.
    pub fn get(&self, name: Option<&str>) -> Arc<CompiledPolicy> {
        name.and_then(|n| self.named.get(n))
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }

    /// Every file the policies were built from, for change detection.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.default.files.clone();
        for p in self.named.values() {
            files.extend(p.files.iter().cloned());
        }
        for p in std::iter::once(&self.default).chain(self.named.values()) {
            files.extend(p.model_files.iter().cloned());
        }
        files.sort();
        files.dedup();
        files
    }
}
