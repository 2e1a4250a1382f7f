//! The schedule runner: every process that runs workers checks its declared schedules on a
//! short tick, claims each due run in the store (so one process runs it, whichever), runs it,
//! and records its outcome and next due time. A schedule whose connector is paused is not
//! run; its run stays due until the connector is resumed.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use junction_store::Store;
use junction_store::pauses::{self, PauseTarget};
use junction_store::schedules::{self, Declared, Finished};
use serde_json::json;
use tokio::task::JoinHandle;

use crate::poll_updates::{self, UpdatePoll};

/// What a schedule does.
#[derive(Clone)]
pub enum Work {
    /// Read a connector's updates over a window of this length.
    PollUpdates(UpdatePoll),
}

/// A declared schedule and its work.
#[derive(Clone)]
pub struct Scheduled {
    pub declared: Declared,
    pub work: Work,
}

/// How long a claimed run is held before another process may take it over.
pub const LEASE: Duration = Duration::minutes(30);

/// How often due schedules are looked for.
pub const TICK: StdDuration = StdDuration::from_secs(5);

/// Declares `scheduled` in the store and starts checking them every `tick`.
pub async fn start(
    store: Store,
    process: String,
    scheduled: Vec<Scheduled>,
    tick: StdDuration,
) -> Result<JoinHandle<()>, junction_store::StoreError> {
    let declared: Vec<Declared> = scheduled.iter().map(|s| s.declared.clone()).collect();
    schedules::declare(&store, &declared).await?;
    let scheduled = Arc::new(scheduled);
    Ok(tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            for s in scheduled.iter() {
                if let Err(e) = run_if_due(&store, &process, s).await {
                    tracing::error!(schedule = %s.declared.name, error = %e, "schedule check failed");
                }
            }
        }
    }))
}

/// Runs `s` if it is due, its connector is not paused, and this process wins the claim.
/// Returns whether it ran.
pub async fn run_if_due(
    store: &Store,
    process: &str,
    s: &Scheduled,
) -> Result<bool, junction_store::StoreError> {
    if let Some(connector) = &s.declared.connector_id {
        let paused = pauses::pauses(store)
            .await?
            .into_iter()
            .any(|p| p.target == PauseTarget::Connector && p.id == *connector);
        if paused {
            return Ok(false);
        }
    }
    let Some(claimed) = schedules::claim(store, &s.declared.name, process, LEASE).await? else {
        return Ok(false);
    };
    let finished = match &s.work {
        Work::PollUpdates(poll) => {
            let window = poll_updates::window_for(poll.window, claimed.cursor.as_ref(), Utc::now());
            match poll_updates::run(store, poll, window).await {
                Ok((counts, cursor)) => Finished {
                    ok: true,
                    counts: json!(counts),
                    error: None,
                    cursor: Some(cursor),
                },
                Err(why) => {
                    tracing::warn!(schedule = %s.declared.name, error = %why, "scheduled run failed");
                    Finished {
                        ok: false,
                        counts: json!({}),
                        error: Some(why),
                        cursor: None,
                    }
                }
            }
        }
    };
    schedules::finish(
        store,
        &s.declared.name,
        process,
        claimed.next_run_at,
        &finished,
    )
    .await?;
    Ok(true)
}
