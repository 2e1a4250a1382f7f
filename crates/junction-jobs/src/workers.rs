//! The apalis workers: each job runs in a task of its own, handed to the file that handles
//! its kind.

use std::sync::Arc;

use apalis::prelude::{BackendExt, BoxDynError, Data, WorkerBuilder, WorkerBuilderExt};
use junction_store::StoreError;
use tokio::task::JoinHandle;

use crate::deliver_case::attempt;
use crate::job::{Job, Queued};
use crate::queue::Queue;
use crate::reconcile::reconcile;
use crate::runner::{Runner, RunnerConfig};
use crate::wake::Pushed;

async fn handle(queued: Queued, runner: Data<Arc<Runner>>) -> Result<(), BoxDynError> {
    // The job runs in its own task: if the queue drops this handler (a lost heartbeat, a
    // stop), the job still finishes and records its outcome rather than leaving its row held
    // until its lease lapses.
    let runner: Arc<Runner> = (*runner).clone();
    let job = queued.job();
    let outcome = tokio::spawn(async move {
        match job {
            Job::Deliver { delivery } => attempt(&runner, delivery).await.map(|_| ()),
        }
    })
    .await;
    if let Err(e) =
        outcome.unwrap_or_else(|e| Err(StoreError::Conflict(format!("job task failed: {e}"))))
    {
        // The row still says what to do; the reconciler will queue it again.
        tracing::error!(?job, error = %e, "a job's outcome could not be recorded");
    }
    Ok(())
}

/// Starts the reconciler and this process's workers. They run until the returned handles are
/// aborted; nothing they hold is lost by stopping them anywhere.
pub fn start(runner: Arc<Runner>, queue: Queue, config: RunnerConfig) -> Vec<JoinHandle<()>> {
    let mut tasks = Vec::new();
    let mut pushed = Pushed::default();
    let workers = config.queue_workers.max(1);
    let concurrency = config.concurrency.max(1).div_ceil(workers);
    for n in 0..workers {
        let name = format!("{}-{n}", runner.process);
        let runner = runner.clone();
        let strategy = pushed.strategy(config.poll, config.idle_poll);
        // The same worker on either backend (their storage types differ).
        macro_rules! spawn_worker {
            ($storage:expr) => {{
                let worker = WorkerBuilder::new(name)
                    .backend($storage.poll_with_strategy(strategy))
                    .data(runner)
                    .concurrency(concurrency)
                    .build(handle);
                tokio::spawn(async move {
                    if let Err(e) = worker.run().await {
                        tracing::error!(error = %e, "delivery worker stopped");
                    }
                })
            }};
        }
        let worker_task = match queue.clone() {
            Queue::Sqlite(storage) => spawn_worker!(storage),
            // Woken by this process's pushes, and polled on an interval (see `wake`). apalis's
            // LISTEN/NOTIFY wake-up (alone, or combined with an interval) left a steady trickle
            // of jobs waiting ~2 s for the heartbeat in our measurements (docs/BENCHMARKS.md),
            // so it is not used.
            Queue::Postgres(storage) => spawn_worker!(storage),
        };
        tasks.push(worker_task);
    }
    tasks.push(tokio::spawn(reconcile(runner, queue, config, pushed)));
    tasks
}
