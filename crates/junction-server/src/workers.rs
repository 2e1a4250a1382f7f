//! Wiring the delivery workers into the process: connectors from the configuration, the queue
//! on Junction's database, and the waker the API rings after committing deliveries.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use junction_api::DeliveryWaker;
use junction_connectors::{ConnectorKind, ConnectorParams};
use junction_jobs::{ConnectorHandle, ConnectorSet, Queue, Runner, RunnerConfig};
use junction_store::Store;
use tokio::task::JoinHandle;

use crate::config::{LoadedConfig, SecretRef};

/// Builds every configured connector with its secrets resolved.
pub fn connectors(loaded: &LoadedConfig) -> anyhow::Result<ConnectorSet> {
    let mut set = ConnectorSet::new();
    for c in &loaded.config.connectors {
        let kind = ConnectorKind::parse(&c.kind)
            .with_context(|| format!("connector `{}`: unknown kind", c.id))?;
        let params = ConnectorParams::parse(
            kind,
            serde_json::to_value(&c.params).unwrap_or_default(),
            &mut |_| {},
        )
        .map_err(|e| anyhow::anyhow!("connector `{}`: {e}", c.id))?;
        let secret = |reference: &str| {
            SecretRef(reference.to_string())
                .resolve()
                .map(|v| v.expose().to_string())
        };
        let deliver = junction_connectors::build(&params, &secret)
            .map_err(|e| anyhow::anyhow!("connector `{}`: {e}", c.id))?;
        set.insert(
            c.id.clone(),
            ConnectorHandle {
                deliver,
                policy: c.retry.policy(),
                timeout: Duration::from_secs(params.timeout_secs()),
                ordered: c.ordered,
            },
        );
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
