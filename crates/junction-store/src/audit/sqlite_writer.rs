//! The group-commit writer on a SQLite file: a thread with its own connection.
//!
//! Through the pool, a batch was a dozen hand-offs between the writer task and a pooled
//! connection's worker thread (check-out, `BEGIN`, head, each insert, `COMMIT`), each a pair of
//! context switches on a busy machine. Here a batch is a few calls into SQLite on one thread,
//! with the insert prepared once for the life of the connection.
//!
//! The thread takes the store's process-wide SQLite write lock for each batch, as every other
//! writer does, so it never waits on SQLite's busy handler behind one of them.

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::{Mutex, mpsc, oneshot};

use super::writer::{MAX_BATCH, Pending, settle};
use super::{COLUMNS, Prepared, Row, chain};

/// Starts the writer thread. The returned task ends when the thread has written everything
/// it was sent and stopped.
pub(super) fn spawn(
    path: PathBuf,
    lock: Arc<Mutex<()>>,
    rx: mpsc::Receiver<Pending>,
) -> tokio::task::JoinHandle<()> {
    let (stopped, on_stop) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("junction-audit".into())
        .spawn(move || {
            run(&path, &lock, rx);
            let _ = stopped.send(());
        });
    if let Err(e) = thread {
        // Without the thread nothing can be audited, and every request will say so.
        tracing::error!(error = %e, "the audit writer thread could not start");
    }
    tokio::spawn(async move {
        let _ = on_stop.await;
    })
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(15))?;
    // The store's own connections use the same settings: WAL, and a commit is on disk before
    // it returns.
    conn.pragma_update(None, "journal_mode", "wal")?;
    conn.pragma_update(None, "synchronous", "full")?;
    Ok(conn)
}

fn run(path: &Path, lock: &Mutex<()>, mut rx: mpsc::Receiver<Pending>) {
    let mut conn = match open(path) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, path = %path.display(), "the audit writer could not open the database");
            // Answer every request with a failure rather than leaving it waiting.
            while let Some(p) = rx.blocking_recv() {
                let _ = p.done.send(Err(()));
            }
            return;
        }
    };
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut last_commit: Option<Instant> = None;
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Whatever arrived while the last batch was being written joins this one.
        drain(&mut rx, &mut batch);
        // Under load (the last commit was moments ago) more records are on their way from
        // requests already running. A quiet server writes at once: a yield there could hand
        // the core to unrelated work for a whole scheduler slice.
        if last_commit.is_some_and(|t| t.elapsed() < BUSY) {
            gather(&mut rx, &mut batch);
        }
        let started = Instant::now();
        let entries: Vec<&Prepared> = batch.iter().map(|p| &p.entry).collect();
        let mut result = write(&mut conn, lock, &entries);
        if let Err(e) = &result {
            // One retry after a pause rides out a brief lock or I/O hiccup.
            tracing::warn!(error = %e, entries = entries.len(), "audit batch failed; retrying once");
            std::thread::sleep(Duration::from_millis(50));
            result = write(&mut conn, lock, &entries);
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, entries = entries.len(), "audit batch could not be written");
        }
        drop(entries);
        settle(&mut batch, result.is_ok(), started);
        last_commit = Some(Instant::now());
    }
}

/// A commit this recent means the writer is under load.
const BUSY: Duration = Duration::from_millis(2);

/// The longest a batch waits for company.
const GATHER_FOR: Duration = Duration::from_millis(2);

/// Lets the requests already running finish and add their records before the batch is
/// written: one commit (its pages written to the log, one flush) for many records is what
/// makes auditing cheap under load.
///
/// The writer gives up its CPU (`sched_yield`), takes what arrived meanwhile, and stops as
/// soon as a turn brings nothing new: the request handlers have run dry, or have work that is
/// not yet a record. On a saturated core a turn is a scheduler slice of request work, and
/// batches grow to fifty records or more; when the writer has a core to itself, the yield
/// returns at once and the batch is written without delay. A fixed linger
/// (sleeping in 50 µs steps for up to 300 µs) cost a timer and a wake-up per step and cut
/// batches short on a busy core (ADR 0002).
fn gather(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    gather_with(rx, batch, std::thread::yield_now);
}

/// [`gather`], with `turn` for the yield.
fn gather_with(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>, mut turn: impl FnMut()) {
    let until = Instant::now() + GATHER_FOR;
    while batch.len() < MAX_BATCH && Instant::now() < until {
        let before = batch.len();
        turn();
        drain(rx, batch);
        if batch.len() == before {
            break;
        }
    }
}

fn drain(rx: &mut mpsc::Receiver<Pending>, batch: &mut Vec<Pending>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(p) => batch.push(p),
            Err(_) => break,
        }
    }
}

/// Appends one batch in one transaction: read the head, chain, insert, move the head, commit.
fn write(conn: &mut Connection, lock: &Mutex<()>, entries: &[&Prepared]) -> rusqlite::Result<()> {
    let _guard = lock.blocking_lock();
    let txn = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let (seq, prev): (i64, String) = txn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    let links = chain(entries.iter().copied(), seq, &prev);
    {
        let mut insert = txn.prepare_cached(&INSERT)?;
        for (p, link) in entries.iter().zip(&links) {
            let row = Row::new(&p.entry, link);
            insert.execute(params![
                row.seq,
                sqlite_time(&row.at),
                row.actor,
                row.agency,
                row.roles,
                row.request_id,
                row.client_addr,
                row.kind,
                row.operation,
                row.object_type,
                row.object_id,
                row.change,
                row.disclosure,
                row.prev_hash,
                row.hash,
            ])?;
        }
    }
    let last = links.last().expect("batches are never empty");
    txn.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")?
        .execute(params![last.seq, last.hash])?;
    txn.commit()
}

/// The insert for one row, prepared once and kept for the life of the connection.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    let placeholders: Vec<String> = (1..=COLUMNS.len()).map(|n| format!("?{n}")).collect();
    format!(
        "INSERT INTO audit_log ({}) VALUES ({})",
        COLUMNS.join(", "),
        placeholders.join(", ")
    )
});

/// A time as the store's SQLite driver writes it (RFC 3339, `+00:00`), so that reads and
/// range filters see one format whichever path wrote the row.
fn sqlite_time(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_domain::AuditEntry;

    fn send(tx: &mpsc::Sender<Pending>, n: usize) {
        for i in 0..n {
            let (done, _) = tokio::sync::oneshot::channel();
            let entry = Prepared::new(AuditEntry::now(format!("caller {i}")));
            tx.try_send(Pending { entry, done }).unwrap();
        }
    }

    #[test]
    fn gathering_goes_on_while_turns_bring_records_and_stops_at_the_first_that_brings_none() {
        let (tx, mut rx) = mpsc::channel(1_024);
        send(&tx, 1);
        let mut batch = Vec::new();
        drain(&mut rx, &mut batch);
        // Three turns in which requests finish (2, 5, then 1 record), then a quiet one.
        let mut arrivals = [2, 5, 1, 0, 7].into_iter();
        let mut turns = 0;
        gather_with(&mut rx, &mut batch, || {
            turns += 1;
            send(&tx, arrivals.next().unwrap());
        });
        assert_eq!(turns, 4);
        assert_eq!(batch.len(), 9);
    }

    #[test]
    fn gathering_stops_at_a_full_batch_and_leaves_the_rest_queued() {
        let (tx, mut rx) = mpsc::channel(1_024);
        send(&tx, MAX_BATCH + 88);
        let mut batch = Vec::new();
        gather_with(&mut rx, &mut batch, || {});
        assert_eq!(batch.len(), MAX_BATCH);
        let mut next = Vec::new();
        drain(&mut rx, &mut next);
        assert_eq!(next.len(), 88, "the rest waits for the next batch");
    }
}
