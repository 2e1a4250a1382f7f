//! When a queue worker asks the queue for jobs: at once when this process's reconciler has just
//! pushed some, every `busy` interval while jobs have been coming, and every `idle` interval
//! once none have come for a while. apalis's own interval strategy asks every `busy` interval
//! for ever: on an idle SQLite server, four workers' queries were most of its CPU.
//!
//! Jobs pushed by another process (PostgreSQL, several Junction processes) are found at the
//! next interval, so `idle` bounds how long an idle worker can leave them; that process's own
//! workers are woken at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use apalis::prelude::{PollSnapshot, PollStrategy};
use futures::StreamExt;
use futures::channel::mpsc;
use tokio::time::{Instant, Sleep};

/// Tells this process's queue workers that jobs were pushed.
#[derive(Default)]
pub(crate) struct Pushed {
    workers: Vec<mpsc::Sender<()>>,
}

impl Pushed {
    /// A strategy for one more worker.
    pub(crate) fn strategy(&mut self, busy: Duration, idle: Duration) -> WakeStrategy {
        // One slot: pushes while a wake is pending coalesce into it.
        let (tx, rx) = mpsc::channel(0);
        self.workers.push(tx);
        WakeStrategy {
            pushed: rx,
            busy,
            idle,
            timer: Box::pin(tokio::time::sleep(busy)),
            last_work: Instant::now(),
            seen_ready: 0,
        }
    }

    /// Wakes every worker that is not already due to look.
    pub(crate) fn ring(&mut self) {
        for tx in &mut self.workers {
            // Full: a wake is already pending. Closed: that worker has stopped.
            let _ = tx.try_send(());
        }
    }
}

/// How long after the last job a worker keeps asking every `busy` interval.
const BUSY_FOR: Duration = Duration::from_secs(5);

/// One worker's poll strategy (see the module documentation).
pub(crate) struct WakeStrategy {
    pushed: mpsc::Receiver<()>,
    busy: Duration,
    idle: Duration,
    timer: Pin<Box<Sleep>>,
    last_work: Instant,
    seen_ready: u64,
}

impl PollStrategy for WakeStrategy {
    fn poll_drive(&mut self, cx: &mut Context<'_>, _: &PollSnapshot) -> Poll<Option<()>> {
        let mut ready = false;
        // Drain (and so re-register on) the push channel; a closed one never wakes again.
        while let Poll::Ready(Some(())) = self.pushed.poll_next_unpin(cx) {
            ready = true;
        }
        if self.timer.as_mut().poll(cx).is_ready() {
            let period = if self.last_work.elapsed() < BUSY_FOR {
                self.busy
            } else {
                self.idle
            };
            self.timer.as_mut().reset(Instant::now() + period);
            // Registers the waker on the new deadline.
            let _ = self.timer.as_mut().poll(cx);
            ready = true;
        }
        if ready {
            Poll::Ready(Some(()))
        } else {
            Poll::Pending
        }
    }

    fn on_poll(&mut self, snapshot: &PollSnapshot) {
        if snapshot.total_ready != self.seen_ready {
            self.seen_ready = snapshot.total_ready;
            self.last_work = Instant::now();
            // Work after an idle spell: the next ask is a busy interval away, not an idle one.
            // (The worker polls the strategy again before it next waits.)
            let soon = self.last_work + self.busy;
            if self.timer.deadline() > soon {
                self.timer.as_mut().reset(soon);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    /// Polls the strategy once, as a worker would: `true` when it says "ask the queue now".
    async fn ready_now(s: &mut WakeStrategy) -> bool {
        poll_fn(|cx| Poll::Ready(s.poll_drive(cx, &PollSnapshot::new()).is_ready())).await
    }

    /// Waits (on the paused clock) until the strategy says "ask", up to `limit`.
    async fn wakes_within(s: &mut WakeStrategy, limit: Duration) -> bool {
        tokio::time::timeout(limit, poll_fn(|cx| s.poll_drive(cx, &PollSnapshot::new())))
            .await
            .is_ok()
    }

    fn worked(s: &mut WakeStrategy, jobs: u64) {
        s.on_poll(&PollSnapshot {
            total_ready: jobs,
            ..PollSnapshot::new()
        });
    }

    #[tokio::test(start_paused = true)]
    async fn busy_workers_poll_often_idle_ones_seldom_and_a_push_wakes_them_at_once() {
        let mut pushed = Pushed::default();
        let busy = Duration::from_millis(50);
        let idle = Duration::from_secs(3600);
        let mut a = pushed.strategy(busy, idle);
        let mut b = pushed.strategy(busy, idle);
        assert!(!ready_now(&mut a).await, "nothing to do yet");

        // Jobs have just come: every busy interval.
        worked(&mut a, 1);
        assert!(wakes_within(&mut a, busy + Duration::from_millis(1)).await);
        assert!(wakes_within(&mut a, busy + Duration::from_millis(1)).await);

        // None for longer than BUSY_FOR: the interval after the next one is the idle one.
        tokio::time::advance(BUSY_FOR).await;
        assert!(wakes_within(&mut a, busy).await);
        assert!(!wakes_within(&mut a, Duration::from_secs(60)).await);

        // A push wakes every worker at once, and only once per push.
        pushed.ring();
        assert!(ready_now(&mut a).await);
        assert!(ready_now(&mut b).await);
        assert!(!ready_now(&mut a).await);

        // Pushes while a wake is pending coalesce into it.
        pushed.ring();
        pushed.ring();
        assert!(ready_now(&mut a).await);
        assert!(!ready_now(&mut a).await);

        // Work again after the idle spell: back to the busy interval at once.
        worked(&mut a, 2);
        assert!(wakes_within(&mut a, busy + Duration::from_millis(1)).await);
        assert!(wakes_within(&mut a, busy + Duration::from_millis(1)).await);
    }
}
