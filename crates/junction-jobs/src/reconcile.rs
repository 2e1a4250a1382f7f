//! The reconciler: hands the queue every due delivery that has no queued job, keeps this
//! process's heartbeat, and turns deliveries held by processes that are gone into ambiguous
//! ones at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use junction_store::{deliveries, processes};

use crate::queue::Queue;
use crate::runner::{Runner, RunnerConfig};
use crate::wake::Pushed;

/// Beats for this process, and marks ambiguous whatever processes that are gone still held
/// (and whatever this one held past its lease). Returns how many were orphaned.
pub async fn recover(runner: &Runner) -> Result<usize, junction_store::StoreError> {
    processes::beat(&runner.store, &runner.process).await?;
    let now = chrono::Utc::now();
    let live = processes::live(&runner.store, now).await?;
    let orphans = deliveries::recover_orphans(&runner.store, &live, now).await?;
    if !orphans.is_empty() {
        tracing::warn!(
            count = orphans.len(),
            "deliveries were in flight in a process that is gone; each will be proved before it is sent again"
        );
        metrics::counter!("junction_deliveries_orphaned_total").increment(orphans.len() as u64);
    }
    Ok(orphans.len())
}

/// The reconciler: hands the queue every due delivery that has no queued job, and every
/// [`processes::BEAT_EVERY`] beats and recovers orphans.
pub(crate) async fn reconcile(
    runner: Arc<Runner>,
    queue: Queue,
    config: RunnerConfig,
    mut pushed: Pushed,
) {
    if let Err(e) = deliveries::forget_queued(&runner.store).await {
        tracing::error!(error = %e, "could not reset queued marks at start");
    }
    let mut last_purge = Instant::now();
    let mut last_beat: Option<Instant> = None;
    let ordered: Vec<String> = runner
        .connectors
        .iter()
        .filter(|(_, c)| c.ordered)
        .map(|(id, _)| id.clone())
        .collect();
    loop {
        if last_beat.is_none_or(|t| t.elapsed() >= processes::BEAT_EVERY) {
            last_beat = Some(Instant::now());
            if let Err(e) = recover(&runner).await {
                tracing::error!(error = %e, "could not beat or recover orphaned deliveries");
            }
        }
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
            last_purge = Instant::now();
            match queue.purge(Duration::from_secs(600)).await {
                Ok(n) if n > 0 => tracing::debug!(purged = n, "finished queue jobs deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not purge finished queue jobs"),
            }
        }
        // Sleep until woken, the next retry falls due, or the tick.
        let mut sleep = config.tick.min(processes::BEAT_EVERY);
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
