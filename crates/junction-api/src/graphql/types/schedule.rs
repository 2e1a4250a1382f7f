//! Schedules: each update poll (and, later, feed, import and category sync), with its last
//! run and the next, for managers watching what comes back from back-ends.

use async_graphql::{Json, Object};
use chrono::{DateTime, Utc};
use junction_store::schedules;

/// A recurring job and how it last went.
pub struct Schedule(pub schedules::Schedule);

#[Object]
impl Schedule {
    /// `<kind>:<connector>`, e.g. `poll_updates:highways`.
    async fn name(&self) -> &str {
        &self.0.name
    }
    /// `poll_updates` or `mop_up_updates`.
    async fn kind(&self) -> &str {
        &self.0.kind
    }
    async fn connector_id(&self) -> Option<&str> {
        self.0.connector_id.as_deref()
    }
    /// Seconds between runs.
    async fn every_seconds(&self) -> i64 {
        self.0.every_secs
    }
    async fn next_run_at(&self) -> DateTime<Utc> {
        self.0.next_run_at
    }
    /// When the run in progress started; none when idle.
    async fn running_since(&self) -> Option<DateTime<Utc>> {
        self.0.running_since
    }
    async fn last_started_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_started_at
    }
    async fn last_finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.last_finished_at
    }
    /// `ok` or `failed`; none before the first run.
    async fn last_outcome(&self) -> Option<&str> {
        self.0.last_outcome.as_deref()
    }
    /// What the last run did: for update polls `applied`, `moved`, `out_of_order`,
    /// `repeats` and `held`.
    async fn last_counts(&self) -> Option<Json<serde_json::Value>> {
        self.0.last_counts.clone().map(Json)
    }
    /// Why the last run failed.
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
}
