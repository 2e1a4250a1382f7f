//! Wiring the delivery workers into the process: connectors from the configuration, the queue
//! on Junction's database, and the waker the API rings after committing deliveries.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use junction_api::DeliveryWaker;
use junction_jobs::{ConnectorHandle, ConnectorSet, Queue, Runner, RunnerConfig};
use junction_store::Store;
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
    let tasks = junction_jobs::start(runner.clone(), queue, config);
    Ok((runner, Workers(tasks)))
}
