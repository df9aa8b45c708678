//! Prometheus metrics (OpenMetrics text via `prometheus-client`): what an
//! operator graphs and alerts on. One [`Metrics`] per server, shared.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `palisade_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route path (`/v1/chat/completions`, or `other`).
    pub route: String,
    /// HTTP status code.
    pub status: u16,
}

/// Labels of `palisade_decisions_total`: one increment per fired rule.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    /// Policy name.
    pub policy: String,
    /// Rule id.
    pub rule: String,
    /// Category id or empty.
    pub category: String,
    /// block, redact, steer, flag.
    pub action: String,
    /// input or output.
    pub direction: String,
    /// enforce or monitor.
    pub mode: String,
}

/// Labels naming a direction.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    /// input or output.
    pub direction: String,
}

/// Labels naming an outcome.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// ok or failed.
    pub result: String,
}

/// Labels naming a reason.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why it happened.
    pub reason: String,
}

/// All metrics of one server.
pub struct Metrics {
    registry: Registry,
    /// Requests by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Fired rules.
    pub decisions: Family<DecisionLabels, Counter>,
    /// Time spent scanning, by direction.
    pub scan_seconds: Family<DirectionLabels, Histogram>,
    /// Time to the upstream's response headers.
    pub upstream_seconds: Histogram,
    /// Streams ended early by a block, by reason.
    pub stream_cuts: Family<ReasonLabels, Counter>,
    /// Policy reloads.
    pub reloads: Family<ResultLabels, Counter>,
    /// Requests let through unscanned because of an internal error with `fail_mode: open`.
    pub fail_open: Counter,
    /// Requests rejected because of an internal error with `fail_mode: closed`.
    pub fail_closed: Counter,
    /// Detection cache figures since the policies were loaded, set when
    /// metrics are scraped (see [`Metrics::set_detection_cache`]).
    detection_cache: Family<ResultLabels, Gauge>,
    detection_cache_bytes: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("palisade");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Requests by route and HTTP status",
            requests.clone(),
        );
        let decisions = Family::<DecisionLabels, Counter>::default();
        registry.register(
            "decisions",
            "Rules fired, by policy, rule, category, action, direction and mode",
            decisions.clone(),
        );
        let scan_seconds = Family::<DirectionLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.000_01, 2.5, 14))
        });
        registry.register(
            "scan_seconds",
            "Time spent in detectors per request and direction",
            scan_seconds.clone(),
        );
        let upstream_seconds = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register(
            "upstream_seconds",
            "Time until the upstream answered (headers)",
            upstream_seconds.clone(),
        );
        let stream_cuts = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "stream_cuts",
            "Streams ended early by the guard",
            stream_cuts.clone(),
        );
        let reloads = Family::<ResultLabels, Counter>::default();
        registry.register(
            "policy_reloads",
            "Policy reloads by result",
            reloads.clone(),
        );
        let fail_open = Counter::default();
        registry.register(
            "fail_open",
            "Requests forwarded unscanned after an internal error (fail_mode: open)",
            fail_open.clone(),
        );
        let fail_closed = Counter::default();
        registry.register(
            "fail_closed",
            "Requests refused after an internal error (fail_mode: closed)",
            fail_closed.clone(),
        );
        let detection_cache = Family::<ResultLabels, Gauge>::default();
        registry.register(
            "detection_cache_texts",
            "Texts answered from the detection cache (hit) or scanned (miss) since the policies were loaded",
            detection_cache.clone(),
        );
        let detection_cache_bytes = Gauge::default();
        registry.register(
            "detection_cache_bytes",
            "Bytes the detection caches hold",
            detection_cache_bytes.clone(),
        );
        Self {
            registry,
            detection_cache,
            detection_cache_bytes,
            requests,
            decisions,
            scan_seconds,
            upstream_seconds,
            stream_cuts,
            reloads,
            fail_open,
            fail_closed,
        }
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }

    /// Sets the detection cache figures (summed over the policies in force).
    pub fn set_detection_cache(&self, hits: u64, misses: u64, bytes: usize) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for (result, n) in [("hit", hits), ("miss", misses)] {
            self.detection_cache
                .get_or_create(&ResultLabels {
                    result: result.into(),
                })
                .set(clamp(n));
        }
        self.detection_cache_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Counts a reload.
    pub fn reload(&self, ok: bool) {
        self.reloads
            .get_or_create(&ResultLabels {
                result: if ok { "ok" } else { "failed" }.into(),
            })
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_contains_registered_metrics() {
        let m = Metrics::new();
        m.requests
            .get_or_create(&RequestLabels {
                route: "/v1/chat/completions".into(),
                status: 200,
            })
            .inc();
        m.reload(false);
        let text = m.encode();
        assert!(
            text.contains(
                "palisade_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 1"
            ),
            "{text}"
        );
        assert!(
            text.contains("palisade_policy_reloads_total{result=\"failed\"} 1"),
            "{text}"
        );
        assert!(text.contains("# EOF"));
    }
}
