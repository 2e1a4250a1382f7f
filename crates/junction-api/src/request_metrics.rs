//! Request counts and latencies by operation and outcome, for `/metrics`.
//!
//! Operation names come from callers, so the number of series they may create is bounded:
//! past [`MAX_OPERATIONS`] distinct names, new ones are counted under `other`. Each series'
//! handles are looked up once and kept, rather than found by label on every request.

use std::collections::HashMap;
use std::sync::{OnceLock, RwLock};
use std::time::Duration;

use metrics::{Counter, Histogram};

/// Distinct operation names with series of their own.
pub const MAX_OPERATIONS: usize = 256;

/// The label that operations beyond [`MAX_OPERATIONS`] share.
pub const OTHER: &str = "other";

/// The outcomes an operation is counted under.
const OUTCOMES: [&str; 3] = ["ok", "error", "rejected"];

/// One operation's series, one per outcome, each made when first used (so `/metrics` shows
/// only outcomes that happened).
type Series = [OnceLock<(Counter, Histogram)>; OUTCOMES.len()];

#[derive(Default)]
pub struct RequestMetrics {
    by_operation: RwLock<HashMap<Box<str>, Series>>,
}

impl std::fmt::Debug for RequestMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let known = self.by_operation.read().map_or(0, |m| m.len());
        f.debug_struct("RequestMetrics")
            .field("operations", &known)
            .finish()
    }
}

impl RequestMetrics {
    /// Counts one request of `operation` that ended with `outcome` after `elapsed`.
    pub fn record(&self, operation: &str, outcome: &str, elapsed: Duration) {
        let i = OUTCOMES.iter().position(|o| *o == outcome).unwrap_or(1);
        let seconds = elapsed.as_secs_f64();
        let count = |name: &str, series: &Series| {
            let (requests, duration) = series[i].get_or_init(|| handles(name, OUTCOMES[i]));
            requests.increment(1);
            duration.record(seconds);
        };
        if let Ok(known) = self.by_operation.read()
            && let Some(series) = known.get(operation)
        {
            count(operation, series);
            return;
        }
        let mut known = self
            .by_operation
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let name = if known.len() >= MAX_OPERATIONS && !known.contains_key(operation) {
            OTHER
        } else {
            operation
        };
        let series = known.entry(name.into()).or_default();
        count(name, series);
    }
}

fn handles(operation: &str, outcome: &str) -> (Counter, Histogram) {
    let labels = [
        ("operation", operation.to_string()),
        ("outcome", outcome.to_string()),
    ];
    (
        metrics::counter!("junction_graphql_requests_total", &labels),
        metrics::histogram!("junction_graphql_request_duration_seconds", &labels),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callers_cannot_create_series_without_bound() {
        let m = RequestMetrics::default();
        for n in 0..MAX_OPERATIONS + 50 {
            m.record(&format!("Op{n}"), "ok", Duration::from_micros(10));
        }
        m.record("Op0", "rejected", Duration::from_micros(10));
        let known = m.by_operation.read().unwrap();
        assert_eq!(known.len(), MAX_OPERATIONS + 1);
        assert!(known.contains_key(OTHER));
        // Only the outcomes that happened have series.
        let op0 = &known["Op0"];
        assert!(op0[0].get().is_some() && op0[2].get().is_some());
        assert!(op0[1].get().is_none());
        assert!(!known.contains_key(format!("Op{}", MAX_OPERATIONS + 1).as_str()));
    }
}
