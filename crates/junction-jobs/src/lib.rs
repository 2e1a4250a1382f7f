//! Junction's workers: apalis jobs whose payloads carry ids only. A handler loads state, calls a
//! connector, and records the outcome with its audit entry in one transaction.
//!
//! What must not be lost lives in Junction's own `deliveries` rows: state, attempts, next
//! attempt time, last error. The apalis queue (on the same database) carries [`Job`]s, each
//! naming a row ("attempt delivery N now"), and each kind is handled in its own file. The
//! reconciler hands the queue every delivery that is due and has no
//! queued job, at start, when woken after a commit, and on a short tick, so a crash between
//! commit and enqueue, a lost job, a restart during a backoff or a worker killed mid-attempt
//! all end with the delivery attempted again. A delivery is claimed with a guarded update
//! before each attempt, naming this process, so two jobs for one delivery never both send it;
//! a process that dies mid-attempt leaves its deliveries ambiguous, and their next step proves
//! what happened before anything is sent again (`deliver_case`).

mod batcher;
mod deliver_case;
mod job;
mod media;
mod notice;
pub mod poll_updates;
mod queue;
mod reconcile;
mod runner;
pub mod schedules;
mod wake;
mod workers;

pub use deliver_case::attempt;
pub use job::{Job, Queued};
pub use queue::{Queue, QueueError};
pub use reconcile::recover;
pub use runner::{ConnectorHandle, ConnectorSet, Outcome, Runner, RunnerConfig};
pub use workers::start;
