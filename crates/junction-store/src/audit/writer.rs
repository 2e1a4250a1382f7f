//! Group commit for operation records: entries that arrive while one batch is being written go
//! into the next, one transaction (and one disk flush) for the lot.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use sea_orm::DbErr;
use tokio::sync::{mpsc, oneshot};

use super::{COLUMNS, Prepared, Row, append_prepared, chain};
use crate::{Backend, Store, StoreError};
use junction_domain::AuditEntry;

/// Records operation entries with group commit. `record` returns only once its entry is
/// committed.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

/// An entry waiting for its batch, and whom to tell once the batch is committed.
pub(super) struct Pending {
    pub(super) entry: Prepared,
    pub(super) done: oneshot::Sender<Result<(), ()>>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("actor", &self.entry.entry.actor)
            .finish()
    }
}

/// Most entries written in one transaction.
pub(super) const MAX_BATCH: usize = 512;

/// How many times the writer yields to let more entries arrive before it writes.
const COALESCE_YIELDS: usize = 4;

impl AuditWriter {
    /// Starts the writer. It stops once every clone of the returned writer is dropped and the
    /// entries already sent are committed.
    ///
    /// On a SQLite file the writer is a thread of its own with its own connection: a batch
    /// is a handful of calls into SQLite on that thread rather than a round of hand-offs to a
    /// pooled connection's worker. Elsewhere (PostgreSQL, in-memory SQLite) it is a task.
    pub fn start(store: Store) -> (AuditWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8_192);
        let task = match store.sqlite_file() {
            Some(path) => {
                let lock = store.sqlite_write_lock();
                super::sqlite_writer::spawn(path.to_path_buf(), lock, rx)
            }
            None => tokio::spawn(run(store, rx)),
        };
        (AuditWriter { tx }, task)
    }

    /// Appends entries to the chain (in one batch when they arrive together) and waits until
    /// all are durable.
    pub async fn record_all(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError> {
        let mut waits = Vec::with_capacity(entries.len());
        for entry in entries {
            let (done, wait) = oneshot::channel();
            self.tx
                .send(Pending {
                    entry: Prepared::new(entry),
                    done,
                })
                .await
                .map_err(|_| StoreError::AuditUnavailable)?;
            waits.push(wait);
        }
        for wait in waits {
            if !matches!(wait.await, Ok(Ok(()))) {
                return Err(StoreError::AuditUnavailable);
            }
        }
        Ok(())
    }

    /// Appends one entry to the chain and waits until it is durable.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.record_all(vec![entry]).await
    }
}

/// Tells every waiter in `batch` how its batch went, and records the batch's size and time.
pub(super) fn settle(batch: &mut Vec<Pending>, ok: bool, started: Instant) {
    metrics::histogram!("junction_audit_batch_size").record(batch.len() as f64);
    metrics::histogram!("junction_audit_batch_seconds").record(started.elapsed().as_secs_f64());
    for pending in batch.drain(..) {
        let _ = pending.done.send(if ok { Ok(()) } else { Err(()) });
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut head: Head = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Let tasks that are already running finish their requests and join this batch: one
        // flush for many records is what makes auditing cheap under load. When nothing else
        // is runnable this costs a few microseconds.
        for _ in 0..COALESCE_YIELDS {
            if batch.len() >= MAX_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        let entries: Vec<Prepared> = batch.iter().map(|p| p.entry.clone()).collect();
        let started = Instant::now();
        let mut result = write_batch(&store, &entries, &mut head).await;
        if let Err(e) = &result {
            // One retry after a pause rides out a brief lock or connection hiccup.
            tracing::warn!(error = %e, entries = entries.len(), "audit batch failed; retrying once");
            tokio::time::sleep(Duration::from_millis(50)).await;
            result = write_batch(&store, &entries, &mut head).await;
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, entries = entries.len(), "audit batch could not be written");
        }
        settle(&mut batch, result.is_ok(), started);
    }
}

/// The chain head as this writer last left it.
type Head = Option<(i64, String)>;

/// Writes one batch. On PostgreSQL a batch on the cached head costs one round trip; if
/// another appender moved the head meanwhile, that attempt writes nothing and the batch goes
/// the locked way instead, as it always does on an in-memory SQLite database.
async fn write_batch(store: &Store, entries: &[Prepared], head: &mut Head) -> Result<(), DbErr> {
    if store.backend() == Backend::Postgres
        && let Some((seq, hash)) = head.take()
        && let Some(new_head) = write_on_cached_head(store, entries, seq, &hash).await?
    {
        *head = Some(new_head);
        return Ok(());
    }
    let txn = store.begin_write().await?;
    let links = append_prepared(&*txn, entries).await?;
    txn.commit().await?;
    *head = links.last().map(|l| (l.seq, l.hash.clone()));
    Ok(())
}

/// Appends after the cached head on PostgreSQL, guarded so that it writes nothing unless the
/// head is still `seq`/`hash`. Returns the new head, or `None` when the head had moved.
async fn write_on_cached_head(
    store: &Store,
    entries: &[Prepared],
    seq: i64,
    hash: &str,
) -> Result<Head, DbErr> {
    let pool = store
        .pg_pool()
        .ok_or_else(|| DbErr::Custom("the cached-head append is for PostgreSQL".into()))?;
    let links = chain(entries, seq, hash);
    let rows: Vec<Row> = entries
        .iter()
        .zip(&links)
        .map(|(p, l)| Row::new(&p.entry, l))
        .collect();
    let last = links.last().expect("batches are never empty");
    let column = |f: fn(&Row) -> Option<&str>| rows.iter().map(f).collect::<Vec<_>>();
    let written = sqlx::query(GUARDED_INSERT.as_str())
        .bind(last.seq)
        .bind(&last.hash)
        .bind(seq)
        .bind(hash)
        .bind(rows.iter().map(|r| r.seq).collect::<Vec<i64>>())
        .bind(rows.iter().map(|r| r.at).collect::<Vec<_>>())
        .bind(column(|r| Some(&r.actor)))
        .bind(column(|r| r.agency.as_deref()))
        .bind(column(|r| Some(&r.roles)))
        .bind(column(|r| r.request_id.as_deref()))
        .bind(column(|r| r.client_addr.as_deref()))
        .bind(column(|r| Some(r.kind)))
        .bind(column(|r| r.operation.as_deref()))
        .bind(column(|r| r.object_type.as_deref()))
        .bind(column(|r| r.object_id.as_deref()))
        .bind(column(|r| r.change.as_deref()))
        .bind(column(|r| r.disclosure.as_deref()))
        .bind(column(|r| Some(&r.prev_hash)))
        .bind(column(|r| Some(&r.hash)))
        .execute(&pool)
        .await
        .map_err(|e| DbErr::Custom(format!("audit append: {e}")))?
        .rows_affected();
    Ok((written == entries.len() as u64).then(|| (last.seq, last.hash.clone())))
}

/// One statement that moves the head from `$3`/`$4` to `$1`/`$2` and inserts the batch, or
/// does neither. Each column travels as one typed array (binary on the wire, nothing for the
/// server to parse), so every batch size shares one statement, prepared once per connection.
static GUARDED_INSERT: LazyLock<String> = LazyLock::new(|| {
    let arrays: Vec<String> = COLUMNS
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let ty = match *c {
                "seq" => "bigint",
                "at" => "timestamptz",
                _ => "text",
            };
            format!("${}::{ty}[]", i + 5)
        })
        .collect();
    format!(
        "WITH head AS (UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4 RETURNING id) \
         INSERT INTO audit_log ({}) SELECT * FROM unnest({}) \
         WHERE EXISTS (SELECT 1 FROM head)",
        COLUMNS.join(", "),
        arrays.join(", ")
    )
});
