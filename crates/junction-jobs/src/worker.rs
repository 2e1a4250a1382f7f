//! Attempting deliveries, the reconciler that feeds the queue, and the apalis workers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use apalis::prelude::{BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use junction_connectors::{Deliver, OutFile, Outbound};
use junction_domain::{
    Actor, AuditDisclosure, Case, CoreClassification, DeliveryKind, DeliveryState, Lens,
    RetryPolicy,
};
use junction_store::deliveries::{self, Delivery, Failure, Settle};
use junction_store::{Store, StoreError, cases, catalogue, sharing};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::queue::Queue;
use crate::wake::Pushed;

/// A queued job: "attempt delivery N now". Everything else is read from the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryJob {
    pub delivery: i64,
}

/// One configured connector, ready to deliver.
#[derive(Clone)]
pub struct ConnectorHandle {
    pub deliver: Arc<dyn Deliver>,
    pub policy: RetryPolicy,
    /// How long one attempt may take before it is abandoned (and its lease lapses).
    pub timeout: Duration,
    /// One delivery at a time, oldest first (see [`deliveries::take_for_queue`]).
    pub ordered: bool,
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
    /// This process's worker name; unique per process, so a restarted process never waits
    /// for its own orphans.
    pub worker_name: String,
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
            worker_name: format!("junction-{}", uuid_like()),
        }
    }
}

fn uuid_like() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}-{:x}", std::process::id(), nanos)
}

/// What attempting a delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not attempted: not due, paused, already taken by another worker, or finished.
    Skipped,
    Settled(DeliveryState),
}

type Reply<T> = oneshot::Sender<Result<T, String>>;
/// A claim request: delivery id and lease, and where to send the claimed delivery.
type ClaimRequest = ((i64, Duration), Reply<Option<Delivery>>);

/// Group commit for claims and outcomes: the workers' claims and settlements that arrive
/// while one transaction commits share the next one, so a burst of deliveries costs a few
/// commits rather than two each.
#[derive(Clone)]
struct Batcher {
    claims: mpsc::Sender<ClaimRequest>,
    settles: mpsc::Sender<(Settle, Reply<Delivery>)>,
}

/// Most claims or outcomes in one transaction.
const BATCH: usize = 256;

impl Batcher {
    fn start(store: Store) -> Batcher {
        let (claims, mut claim_rx) = mpsc::channel::<ClaimRequest>(4_096);
        let (settles, mut settle_rx) = mpsc::channel::<(Settle, Reply<Delivery>)>(4_096);
        let s = store.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while claim_rx.recv_many(&mut batch, BATCH).await > 0 {
                let items: Vec<(i64, Duration)> = batch.iter().map(|(c, _)| *c).collect();
                match deliveries::claim_batch(&s, &items).await {
                    Ok(results) => {
                        for ((_, reply), r) in batch.drain(..).zip(results) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while settle_rx.recv_many(&mut batch, BATCH).await > 0 {
                let items: Vec<Settle> = batch.iter().map(|(o, _)| o.clone()).collect();
                match deliveries::settle_batch(&store, &items).await {
                    Ok(results) => {
                        for ((_, reply), r) in batch.drain(..).zip(results) {
                            let _ = reply.send(r.map_err(|e| e.to_string()));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Batcher { claims, settles }
    }

    async fn claim(&self, id: i64, lease: Duration) -> Result<Option<Delivery>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.claims
            .send(((id, lease), tx))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(failed)
    }

    async fn settle(&self, outcome: Settle) -> Result<Delivery, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.settles.send((outcome, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(failed)
    }
}

fn gone() -> StoreError {
    StoreError::Conflict("the delivery batcher has stopped".into())
}

fn failed(e: String) -> StoreError {
    StoreError::Conflict(e)
}

/// Runs delivery attempts.
pub struct Runner {
    pub store: Store,
    pub connectors: ConnectorSet,
    wake: Arc<Notify>,
    batcher: Batcher,
    names: std::sync::Mutex<std::collections::HashMap<(String, String), String>>,
    /// Classifications of core case attributes, for notices to partners.
    core: Arc<CoreClassification>,
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
        Arc::new(Runner {
            batcher: Batcher::start(store.clone()),
            store,
            connectors,
            wake: Arc::new(Notify::new()),
            names: Default::default(),
            core,
        })
    }

    /// A case type's name, read once per process (the catalogue changes only at start).
    async fn service_name(&self, jurisdiction: &str, code: &str) -> Result<String, StoreError> {
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

/// Attempts delivery `id` once, if it is due: claim, call the connector, record the outcome.
pub async fn attempt(runner: &Runner, id: i64) -> Result<Outcome, junction_store::StoreError> {
    let Some(d) = deliveries::get(&runner.store, id).await? else {
        return Ok(Outcome::Skipped);
    };
    let Some(connector) = runner.connectors.get(&d.connector_id).cloned() else {
        // Configuration no longer names this connector: the delivery waits (and shows as
        // pending) until it is configured again or the case is rerouted.
        tracing::warn!(
            delivery = id,
            connector = d.connector_id,
            "delivery to an unknown connector"
        );
        return Ok(Outcome::Skipped);
    };
    // A delivery still `sending` here was held by a worker that died mid-attempt: that
    // attempt may have arrived, so this one asks before it resends.
    let orphaned = d.state == DeliveryState::Sending;
    let lease = connector.timeout + Duration::from_secs(5);
    let Some(d) = runner.batcher.claim(id, lease).await? else {
        return Ok(Outcome::Skipped);
    };
    let found = cases::get_by_id(&runner.store, &d.case_id).await?;
    // A notice to a partner shows only what its agreement allows, and goes only while the
    // agreement is active and the case still shared.
    let (case, notice) = match (found, d.kind) {
        (Some(case), DeliveryKind::PartnerNotice) => match partner_notice(runner, &d, &case).await?
        {
            Ok((redacted, notice)) => (Some(redacted), Some(notice)),
            Err(why) => return give_up(runner, id, why, connector.policy).await,
        },
        (found, _) => (found, None),
    };
    let Some(case) = case else {
        let why = format!("case {} no longer exists", d.case_id);
        return give_up(runner, id, why, connector.policy).await;
    };
    let service_name = runner
        .service_name(&case.jurisdiction_id, &case.case_type_code)
        .await?;
    let to: Vec<String> = d.payload["to"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    // The case's files, for a connector that sends them; never in a notice to a partner.
    let stored = if connector.deliver.sends_files() && d.kind != DeliveryKind::PartnerNotice {
        junction_store::attachments::of_case_with_data(&runner.store, &case.id).await?
    } else {
        Vec::new()
    };
    let files: Vec<OutFile<'_>> = stored
        .iter()
        .map(|(a, data)| OutFile {
            part: &a.part,
            file_name: &a.file_name,
            content_type: &a.content_type,
            data,
        })
        .collect();
    let out = Outbound {
        case: &case,
        service_name: &service_name,
        route: case.route.as_ref(),
        idempotency_key: &d.idempotency_key,
        attempt: d.attempts,
        after_ambiguous: orphaned || d.payload["ambiguous"].as_bool().unwrap_or(false),
        pending_token: d.payload["token"].as_str(),
        to: &to,
        notice: notice.as_deref(),
        files: &files,
    };
    // The connector has its own timeout; this one guards against a connector that ignores it.
    let result = tokio::time::timeout(
        connector.timeout + Duration::from_secs(15),
        connector.deliver.deliver(&out),
    )
    .await;
    let settled = match result {
        Ok(Ok(accepted)) => {
            let done = runner
                .batcher
                .settle(Settle::Sent {
                    id,
                    external_ref: accepted.external_ref.clone(),
                    response: accepted.response.clone(),
                })
                .await?;
            metrics::counter!("junction_deliveries_total", "connector" => d.connector_id.clone(), "outcome" => "sent").increment(1);
            done.state
        }
        Ok(Err(refused)) => {
            let failure = Failure {
                error: refused.error.message.clone(),
                response: refused.error.response.clone(),
                permanent: !refused.error.retriable,
                ambiguous: refused.error.ambiguous,
                token: refused.token.clone(),
            };
            let error = failure.error.clone();
            let after = runner
                .batcher
                .settle(Settle::Failed {
                    id,
                    failure,
                    policy: connector.policy,
                })
                .await?;
            tracing::info!(
                delivery = id,
                connector = d.connector_id,
                attempt = d.attempts,
                state = after.state.as_str(),
                error,
                "delivery attempt failed"
            );
            metrics::counter!("junction_deliveries_total", "connector" => d.connector_id.clone(), "outcome" => after.state.as_str()).increment(1);
            after.state
        }
        Err(_) => {
            let failure = Failure {
                error: "the attempt did not finish in time".into(),
                response: None,
                permanent: false,
                ambiguous: true,
                token: None,
            };
            runner
                .batcher
                .settle(Settle::Failed {
                    id,
                    failure,
                    policy: connector.policy,
                })
                .await?
                .state
        }
    };
    if connector.ordered {
        // The next delivery to an ordered connector is taken only once this one is settled.
        runner.wake.notify_one();
    }
    Ok(Outcome::Settled(settled))
}

/// The reconciler: hands the queue every due delivery that has no queued job.
async fn reconcile(runner: Arc<Runner>, queue: Queue, config: RunnerConfig, mut pushed: Pushed) {
    if let Err(e) = deliveries::forget_queued(&runner.store).await {
        tracing::error!(error = %e, "could not reset queued marks at start");
    }
    let mut last_purge = std::time::Instant::now();
    let ordered: Vec<String> = runner
        .connectors
        .iter()
        .filter(|(_, c)| c.ordered)
        .map(|(id, _)| id.clone())
        .collect();
    loop {
        let now = chrono::Utc::now();
        match deliveries::take_for_queue(&runner.store, now, config.queue_hold, 1_000, &ordered)
            .await
        {
            Ok(ids) if !ids.is_empty() => {
                let full = ids.len() == 1_000;
                match queue.push(&ids).await {
                    Ok(()) => pushed.ring(),
                    Err(e) => {
                        tracing::error!(error = %e, count = ids.len(), "could not queue deliveries; they will be taken again");
                        if let Err(e) = deliveries::forget_queued(&runner.store).await {
                            tracing::error!(error = %e, "could not reset queued marks");
                        }
                        tokio::time::sleep(config.tick).await;
                    }
                }
                if full {
                    continue;
                }
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "reconciler could not read due deliveries"),
        }
        if last_purge.elapsed() > Duration::from_secs(60) {
            last_purge = std::time::Instant::now();
            match queue.purge(Duration::from_secs(600)).await {
                Ok(n) if n > 0 => tracing::debug!(purged = n, "finished queue jobs deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not purge finished queue jobs"),
            }
        }
        // Sleep until woken, the next retry falls due, or the tick.
        let mut sleep = config.tick;
        if let Ok(Some(next)) = deliveries::next_due_at(&runner.store).await {
            let until = (next - chrono::Utc::now()).to_std().unwrap_or_default();
            sleep = sleep.min(until.max(Duration::from_millis(5)));
        }
        tokio::select! {
            _ = runner.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
        }
    }
}

async fn handle(job: DeliveryJob, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    // The attempt runs in its own task: if the queue drops this handler (a lost heartbeat, a
    // stop), the attempt still finishes and records its outcome rather than leaving the
    // delivery held until its lease lapses.
    let runner: Arc<Runner> = (*runner).clone();
    let id = job.delivery;
    let outcome = tokio::spawn(async move { attempt(&runner, id).await }).await;
    match outcome.unwrap_or_else(|e| Err(StoreError::Conflict(format!("attempt task failed: {e}"))))
    {
        Ok(_) => Ok(()),
        Err(e) => {
            // The delivery row still says what to do; the reconciler will queue it again.
            tracing::error!(delivery = job.delivery, error = %e, "delivery attempt could not be recorded");
            Ok(())
        }
    }
}

/// Starts the reconciler and this process's workers. They run until the returned handles are
/// aborted; nothing they hold is lost by stopping them anywhere.
pub fn start(runner: Arc<Runner>, queue: Queue, config: RunnerConfig) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut pushed = Pushed::default();
    let workers = config.queue_workers.max(1);
    let concurrency = config.concurrency.max(1).div_ceil(workers);
    for n in 0..workers {
        let name = format!("{}-{n}", config.worker_name);
        let runner = runner.clone();
        let strategy = pushed.strategy(config.poll, config.idle_poll);
        let worker_task = match queue.clone() {
            Queue::Sqlite(storage) => {
                let worker = WorkerBuilder::new(name)
                    .backend(storage.poll_with_strategy(strategy))
                    .data(runner)
                    .concurrency(concurrency)
                    .build(handle);
                tokio::spawn(async move {
                    if let Err(e) = worker.run().await {
                        tracing::error!(error = %e, "delivery worker stopped");
                    }
                })
            }
            Queue::Postgres(storage) => {
                // Woken by this process's pushes, and polled on an interval (see `wake`).
                // apalis's LISTEN/NOTIFY wake-up (alone, or combined with an interval) left a
                // steady trickle of jobs waiting ~2 s for the heartbeat in our measurements
                // (docs/BENCHMARKS.md), so it is not used.
                let worker = WorkerBuilder::new(name)
                    .backend(storage.poll_with_strategy(strategy))
                    .data(runner)
                    .concurrency(concurrency)
                    .build(handle);
                tokio::spawn(async move {
                    if let Err(e) = worker.run().await {
                        tracing::error!(error = %e, "delivery worker stopped");
                    }
                })
            }
        };
        tasks.push(worker_task);
    }
    tasks.push(tokio::spawn(reconcile(runner, queue, config, pushed)));
    tasks
}

/// Settles a delivery as failed for good, with `why`, without attempting it.
async fn give_up(
    runner: &Runner,
    id: i64,
    why: String,
    policy: RetryPolicy,
) -> Result<Outcome, StoreError> {
    let failure = Failure {
        error: why,
        response: None,
        permanent: true,
        ambiguous: false,
        token: None,
    };
    let after = runner
        .batcher
        .settle(Settle::Failed {
            id,
            failure,
            policy,
        })
        .await?;
    Ok(Outcome::Settled(after.state))
}

/// The case as the partner's agreement shows it, and the notice text; or why nothing may be
/// sent. Personal values the notice shows are on the audit chain before it goes.
async fn partner_notice(
    runner: &Runner,
    d: &Delivery,
    case: &Case,
) -> Result<Result<(Case, String), String>, StoreError> {
    let agency = d.payload["agency"].as_str().unwrap_or_default().to_string();
    let agreement_id = d.payload["agreement"].as_str().unwrap_or_default();
    let Some(stored) = sharing::agreement(&runner.store, agreement_id).await? else {
        return Ok(Err(format!(
            "agreement `{agreement_id}` no longer exists: nothing sent"
        )));
    };
    let agreement = stored.agreement;
    if !agreement.is_active(chrono::Utc::now()) {
        return Ok(Err(format!(
            "agreement `{agreement_id}` is {}: nothing sent",
            agreement.state(chrono::Utc::now()).as_str()
        )));
    }
    let live = sharing::live_shares(&runner.store, std::slice::from_ref(&case.id)).await?;
    let still_shared = live.get(&case.id).is_some_and(|s| {
        s.iter()
            .any(|s| s.agency_id == agency && s.agreement_id == agreement_id)
    });
    if !still_shared {
        return Ok(Err(format!(
            "case {} is no longer shared with `{agency}`: nothing sent",
            case.reference
        )));
    }
    let case_type =
        catalogue::case_type(&runner.store, &case.jurisdiction_id, &case.case_type_code)
            .await?
            .map(Arc::new);
    let notice = format!(
        "Case {} has been shared with {agency} under data sharing agreement `{}` ({}; lawful basis: {}). Only what the agreement allows is shown.",
        case.reference, agreement.id, agreement.title, agreement.lawful_basis
    );
    let lens = Lens::Partner {
        agreement: Arc::new(agreement),
        purpose: "share_notice".into(),
        agency: agency.clone(),
        core: runner.core.clone(),
        case_type,
    };
    let disclosed = lens.disclosed_in_full(case);
    if !disclosed.is_empty() {
        let Lens::Partner { agreement, .. } = &lens else {
            unreachable!("built as a partner lens")
        };
        let mut entry = Actor::internal("share-notice").entry();
        entry.disclosure = Some(AuditDisclosure {
            case_id: case.id.clone(),
            case_reference: case.reference.clone(),
            partner_agency: agency,
            agreement_id: agreement.id.clone(),
            purpose: "share_notice".into(),
            fields: disclosed,
            channel: "email".into(),
        });
        let txn = runner.store.begin_write().await?;
        junction_store::audit::append(&*txn, &[entry]).await?;
        txn.commit().await?;
    }
    Ok(Ok((lens.redact(case), notice)))
}
