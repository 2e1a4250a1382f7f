//! The apalis queue on Junction's own database: SQLite (its own pool on the same file) or
//! PostgreSQL (the `apalis` schema).
//!
//! Two things apalis 1.0 does that Junction corrects (measured when the queue was chosen; ADR
//! 0007): its SQLite setup turns `synchronous` off on whatever connection runs it, so it runs
//! on a throw-away connection and the queue's own pool sets its level on every connection;
//! and finished jobs are never deleted, which makes every SQLite ack slower as they pile up,
//! so Junction deletes them (the delivery rows keep the history).

use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::TaskSink;
use apalis_postgres::PostgresStorage;
use apalis_sqlite::SqliteStorage;
use junction_domain::DeliveryId;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use crate::job::{Job, Queued};

/// The queue name: fixed, so renaming the job type never moves the queue.
pub const QUEUE: &str = "junction.deliveries";

#[derive(Debug, thiserror::Error)]
#[error("queue: {0}")]
pub struct QueueError(pub String);

fn err(e: impl std::fmt::Display) -> QueueError {
    QueueError(e.to_string())
}

/// The queue's storage.
#[derive(Clone)]
pub enum Queue {
    Sqlite(SqliteStorage<Queued>),
    Postgres(PostgresStorage<Queued>),
}

impl std::fmt::Debug for Queue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Queue::Sqlite(_) => "Queue::Sqlite",
            Queue::Postgres(_) => "Queue::Postgres",
        })
    }
}

impl Queue {
    /// The queue's database for Junction's database at `url`: on PostgreSQL the same
    /// database (schema `apalis`); on SQLite a sibling file (`junction.db` →
    /// `junction.queue.db`), because SQLite has one writer per file and the queue's pool
    /// would otherwise contend with Junction's own writes (docs/adr/0007).
    pub fn url_for(url: &str) -> String {
        if !url.starts_with("sqlite:") || url.contains(":memory:") {
            return url.to_string();
        }
        let (base, query) = url
            .split_once('?')
            .map_or((url, None), |(b, q)| (b, Some(q)));
        let file = match base.strip_suffix(".db") {
            Some(stem) => format!("{stem}.queue.db"),
            None => format!("{base}.queue"),
        };
        match query {
            Some(q) => format!("{file}?{q}"),
            None => file,
        }
    }

    /// Opens the queue in the database at `url` and creates its tables if needed.
    pub async fn open(url: &str) -> Result<Queue, QueueError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(err)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(15));
            {
                // apalis's setup sets PRAGMAs (synchronous=OFF among them) on the connection
                // it runs on: give it one of its own, then close it.
                let setup = SqlitePoolOptions::new()
                    .max_connections(1)
                    .connect_with(options.clone())
                    .await
                    .map_err(err)?;
                SqliteStorage::setup(&setup).await.map_err(err)?;
                // The ack statement plans through this index and walks every job the worker
                // ever locked (ADR 0007); Junction's purge keeps the table small instead.
                sqlx::query("DROP INDEX IF EXISTS LIdx")
                    .execute(&setup)
                    .await
                    .map_err(err)?;
                setup.close().await;
            }
            // The queue file is disposable: every job in it can be rebuilt from the delivery
            // rows by the reconciler, so its commits need not wait for the disk (NORMAL in WAL
            // mode still never corrupts it). Junction's own file stays `synchronous=FULL`.
            let pool = junction_store::sqlite_pool_options()
                .max_connections(4)
                .connect_with(options.synchronous(SqliteSynchronous::Normal))
                .await
                .map_err(err)?;
            let config = apalis_sqlite::Config::default()
                .queue(QUEUE)
                .batch_size(32)
                .heartbeat_interval(Duration::from_secs(5))
                .missed_heartbeats(3);
            Ok(Queue::Sqlite(SqliteStorage::new(&pool).with_config(config)))
        } else {
            let pool = junction_store::pg_pool_options()
                .max_connections(8)
                .connect(url)
                .await
                .map_err(err)?;
            PostgresStorage::setup(&pool).await.map_err(err)?;
            let config = apalis_postgres::Config::default()
                .queue(QUEUE)
                .batch_size(32)
                .heartbeat_interval(Duration::from_secs(5))
                .missed_heartbeats(3);
            Ok(Queue::Postgres(
                PostgresStorage::new(&pool).with_config(config),
            ))
        }
    }

    /// Hands the queue one job per delivery id.
    pub async fn push(&self, ids: &[DeliveryId]) -> Result<(), QueueError> {
        if ids.is_empty() {
            return Ok(());
        }
        let jobs: Vec<Queued> = ids
            .iter()
            .map(|&delivery| Job::Deliver { delivery }.into())
            .collect();
        match self.clone() {
            Queue::Sqlite(mut s) => s.push_bulk(jobs).await.map_err(err),
            Queue::Postgres(mut s) => s.push_bulk(jobs).await.map_err(err),
        }
    }

    /// Deletes finished jobs older than `age`; returns how many.
    pub async fn purge(&self, age: Duration) -> Result<u64, QueueError> {
        let cutoff = chrono::Utc::now().timestamp() - age.as_secs() as i64;
        match self {
            Queue::Sqlite(s) => sqlx::query(
                "DELETE FROM Jobs WHERE status IN ('Done', 'Failed', 'Killed') AND done_at < ?",
            )
            .bind(cutoff)
            .execute(s.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(err),
            Queue::Postgres(s) => sqlx::query(
                "DELETE FROM apalis.jobs WHERE status IN ('Done', 'Failed', 'Killed') \
                 AND done_at < to_timestamp($1)",
            )
            .bind(cutoff as f64)
            .execute(s.pool())
            .await
            .map(|r| r.rows_affected())
            .map_err(err),
        }
    }
}
