//! The runner: this process's connectors, its identity (the process id claims carry), and its
//! tuning.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use junction_connectors::{Capabilities, Connector, Deliver};
use junction_domain::{CoreClassification, DeliveryState, RetryPolicy};
use junction_store::{Store, StoreError, catalogue};

use tokio::sync::Notify;

use crate::batcher::Batcher;

/// One configured connector, ready to deliver.
#[derive(Clone)]
pub struct ConnectorHandle {
    /// What the connector is, and how its failures are classed.
    pub base: Arc<dyn Connector>,
    /// Its deliver-a-case capability: a connector without it cannot be routed to.
    pub deliver: Arc<dyn Deliver>,
    pub policy: RetryPolicy,
    /// How long one call to the connector may take before it is abandoned as unanswered.
    pub timeout: Duration,
    /// One delivery at a time, oldest first (see [`deliveries::take_for_queue`]).
    pub ordered: bool,
}

impl ConnectorHandle {
    /// The handle for a built connector, which must offer delivering a case.
    pub fn new(
        caps: Capabilities,
        policy: RetryPolicy,
        timeout: Duration,
        ordered: bool,
    ) -> Result<ConnectorHandle, String> {
        let deliver = caps.deliver_case.ok_or_else(|| {
            format!(
                "a `{}` connector cannot deliver cases",
                caps.base.kind().as_str()
            )
        })?;
        Ok(ConnectorHandle {
            base: caps.base,
            deliver,
            policy,
            timeout,
            ordered,
        })
    }
}

/// Every connector, by id.
pub type ConnectorSet = BTreeMap<String, ConnectorHandle>;

/// Tuning for the reconciler and workers.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// How many deliveries one process attempts at once, over all its queue workers.
    pub concurrency: usize,
    /// How many queue workers the process runs. A queue worker fetches a batch and finishes
    /// it before fetching the next, so several keep the pipeline full.
    pub queue_workers: usize,
    /// How often the reconciler looks for due work when nothing wakes it.
    pub tick: Duration,
    /// How often a worker asks the queue for jobs while jobs have been coming (in the last
    /// 5 s); it also asks at once whenever this process's reconciler pushes some.
    pub poll: Duration,
    /// How often a worker asks once none have come for 5 s.
    pub idle_poll: Duration,
    /// How long a delivery handed to the queue is left to its job before it is queued again.
    pub queue_hold: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        RunnerConfig {
            concurrency: 64,
            queue_workers: 4,
            tick: Duration::from_millis(500),
            poll: Duration::from_millis(50),
            idle_poll: Duration::from_secs(1),
            queue_hold: Duration::from_secs(120),
        }
    }
}

/// A name no other process has had: host, pid and the start time. Claims carry it, queue
/// workers are named after it, and a restarted process never waits for its own orphans.
fn process_id() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{}-{}-{:x}",
        junction_store::processes::this_host(),
        std::process::id(),
        nanos
    )
}

/// What attempting a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not attempted: not due, paused, already taken by another worker, or finished.
    Skipped,
    Settled(DeliveryState),
}

/// Runs delivery attempts.
pub struct Runner {
    pub store: Store,
    /// This process's id in `processes`: every claim it makes names it.
    pub process: String,
    pub connectors: ConnectorSet,
    pub(crate) wake: Arc<Notify>,
    pub(crate) batcher: Batcher,
    names: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
    /// Classifications of core case attributes, for notices to partners.
    pub(crate) core: Arc<CoreClassification>,
    /// Fetches photos sent by address before a delivery that carries files; none when no
    /// host is allowed.
    pub(crate) media: Option<junction_connectors::media::MediaFetcher>,
}

impl Runner {
    /// Must be called within a tokio runtime: it starts the group-commit tasks.
    pub fn new(store: Store, connectors: ConnectorSet) -> Arc<Runner> {
        Runner::with_classification(store, connectors, Arc::default())
    }

    /// As [`Runner::new`], redacting partner notices by the configured classifications.
    pub fn with_classification(
        store: Store,
        connectors: ConnectorSet,
        core: Arc<CoreClassification>,
    ) -> Arc<Runner> {
        let process = process_id();
        Arc::new(Runner {
            batcher: Batcher::start(store.clone(), process.clone()),
            process,
            store,
            connectors,
            wake: Arc::new(Notify::new()),
            names: Default::default(),
            core,
            media: None,
        })
    }

    /// As [`Runner::with_classification`], fetching photos sent by address from the hosts
    /// `media` allows before a delivery that carries files.
    pub fn with_media(
        store: Store,
        connectors: ConnectorSet,
        core: Arc<CoreClassification>,
        media: junction_connectors::media::MediaFetchParams,
    ) -> Arc<Runner> {
        let mut runner = Arc::into_inner(Runner::with_classification(store, connectors, core))
            .expect("a new runner has one owner");
        runner.media =
            (!media.hosts.is_empty()).then(|| junction_connectors::media::MediaFetcher::new(media));
        Arc::new(runner)
    }

    /// A case type's name, read once per process (the catalogue changes only at start).
    pub(crate) async fn service_name(
        &self,
        jurisdiction: &str,
        code: &str,
    ) -> Result<String, StoreError> {
        let key = (jurisdiction.to_string(), code.to_string());
        if let Some(name) = self.names.lock().expect("names").get(&key) {
            return Ok(name.clone());
        }
        let name = catalogue::case_type(&self.store, jurisdiction, code)
            .await?
            .map_or_else(|| code.to_string(), |t| t.name);
        self.names.lock().expect("names").insert(key, name.clone());
        Ok(name)
    }

    /// Wakes the reconciler: new deliveries were committed, or a pause was lifted.
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}
