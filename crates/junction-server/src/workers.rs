//! Wiring the delivery workers into the process: connectors from the configuration, the queue
//! on Junction's database, and the waker the API rings after committing deliveries.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use junction_api::DeliveryWaker;
use junction_jobs::poll_updates::UpdatePoll;
use junction_jobs::schedules::{Scheduled, Work};
use junction_jobs::{ConnectorHandle, ConnectorSet, Queue, Runner, RunnerConfig};
use junction_store::Store;
use junction_store::schedules::Declared;
use tokio::task::JoinHandle;

use crate::config::LoadedConfig;

/// Builds every configured connector from its checked specification.
pub fn connectors(loaded: &LoadedConfig) -> anyhow::Result<ConnectorSet> {
    let mut set = ConnectorSet::new();
    for spec in &loaded.connectors {
        let handle = spec
            .build()
            .and_then(|caps| {
                ConnectorHandle::new(
                    caps,
                    spec.retry,
                    Duration::from_secs(spec.params.timeout_secs()),
                    spec.ordered,
                )
            })
            .map_err(|e| anyhow::anyhow!("connector `{}`: {e}", spec.id))?;
        set.insert(spec.id.clone(), handle);
    }
    Ok(set)
}

/// Rings the in-process reconciler.
pub struct RunnerWaker(pub Arc<Runner>);

impl DeliveryWaker for RunnerWaker {
    fn wake(&self) {
        self.0.wake();
    }
}

/// The workers of a running process; dropping this stops them (deliveries they held are
/// attempted again once their leases lapse).
pub struct Workers(pub Vec<JoinHandle<()>>);

impl Drop for Workers {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// Starts the reconciler and workers for `store`.
pub async fn start(loaded: &LoadedConfig, store: &Store) -> anyhow::Result<(Arc<Runner>, Workers)> {
    let runner = Runner::with_media(
        store.clone(),
        connectors(loaded)?,
        loaded.sharing.policy.core.clone(),
        loaded.config.media.clone(),
    );
    if !loaded.config.workers.enabled {
        return Ok((runner, Workers(Vec::new())));
    }
    let queue = Queue::open(&Queue::url_for(&loaded.database_url()))
        .await
        .context("opening the delivery queue")?;
    let config = RunnerConfig {
        concurrency: loaded.config.workers.concurrency.max(1),
        ..RunnerConfig::default()
    };
    let mut tasks = junction_jobs::start(runner.clone(), queue, config);
    let scheduled = schedules(loaded)?;
    if !scheduled.is_empty() {
        let task = junction_jobs::schedules::start(
            store.clone(),
            runner.process.clone(),
            scheduled,
            junction_jobs::schedules::TICK,
        )
        .await
        .context("declaring the schedules")?;
        tasks.push(task);
    }
    Ok((runner, Workers(tasks)))
}

/// The schedules the configuration declares: each connector's update poll and its mop-up.
pub fn schedules(loaded: &LoadedConfig) -> anyhow::Result<Vec<Scheduled>> {
    let mut out = Vec::new();
    for spec in &loaded.connectors {
        let Some(updates) = &spec.updates else {
            continue;
        };
        let caps = spec
            .build()
            .map_err(|e| anyhow::anyhow!("connector `{}`: {e}", spec.id))?;
        let statuses = Arc::new(updates.statuses.clone());
        let mut poll = |kind: &str, every: chrono::Duration, window: chrono::Duration| {
            let Some(poller) = caps.poll_updates.clone() else {
                return Err(anyhow::anyhow!(
                    "connector `{}` cannot poll updates",
                    spec.id
                ));
            };
            out.push(Scheduled {
                declared: Declared {
                    name: format!("{kind}:{}", spec.id),
                    kind: kind.to_string(),
                    connector_id: Some(spec.id.clone()),
                    every,
                },
                work: Work::PollUpdates(UpdatePoll {
                    connector_id: spec.id.clone(),
                    poller,
                    statuses: statuses.clone(),
                    window,
                }),
            });
            Ok(())
        };
        if updates.poll_every_mins > 0 {
            poll(
                "poll_updates",
                chrono::Duration::minutes(updates.poll_every_mins as i64),
                chrono::Duration::minutes(updates.window_mins as i64),
            )?;
        }
        if updates.poll_every_mins > 0 && updates.mop_up_every_hours > 0 {
            poll(
                "mop_up_updates",
                chrono::Duration::hours(updates.mop_up_every_hours as i64),
                chrono::Duration::hours(updates.mop_up_window_hours as i64),
            )?;
        }
    }
    Ok(out)
}

/// `junction worker`: this process's deliveries and schedules, with no API, until SIGTERM or
/// Ctrl-C. What it held when stopped is taken up by the others (or by itself when restarted):
/// deliveries once their claims lapse, proved before anything is sent again; schedules once
/// their leases lapse.
pub async fn run_alone(loaded: &LoadedConfig) -> anyhow::Result<()> {
    let store = crate::app::open_store(loaded).await?;
    let (runner, workers) = start(loaded, &store).await?;
    tracing::info!(process = %runner.process, "worker started");
    crate::serve::signal().await;
    tracing::info!(process = %runner.process, "worker stopping");
    drop(workers);
    store.close().await?;
    Ok(())
}
