//! Connecting to SQLite or PostgreSQL, migrating, and write transactions.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before it returns,
//! write transactions begin `IMMEDIATE`, and writes within one process are serialised by a
//! lock taken before `BEGIN`: a deferred
//! SQLite transaction that reads and then writes can otherwise fail at once with `SQLITE_BUSY`
//! when another connection committed in between. PostgreSQL needs no such lock.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use junction_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, SqlxPostgresConnector, SqlxSqliteConnector, TransactionOptions,
    TransactionTrait,
};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::StoreError;

/// Which database is behind the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A handle on Junction's database. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    db: DatabaseConnection,
    backend: Backend,
    write_lock: Option<Arc<Mutex<()>>>,
}

/// A write transaction. On SQLite it also holds the process's write lock until it ends.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await
    }
}

impl Store {
    /// Connects to `url` (`sqlite://path`, `sqlite::memory:` or `postgres://…`).
    /// A SQLite file is created when missing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| {
                    DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                        "bad SQLite URL: {e}"
                    )))
                })?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(15));
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let pool = SqlitePoolOptions::new()
                // An in-memory database exists per connection: keep exactly one.
                .max_connections(if in_memory { 1 } else { 8 })
                .min_connections(1)
                .connect_with(options)
                .await
                .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into())))?;
            Ok(Store {
                db: SqlxSqliteConnector::from_sqlx_sqlite_pool(pool),
                backend: Backend::Sqlite,
                write_lock: Some(Arc::new(Mutex::new(()))),
            })
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(15))
                .connect(url)
                .await
                .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into())))?;
            Ok(Store {
                db: SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                backend: Backend::Postgres,
                write_lock: None,
            })
        } else {
            Err(StoreError::Database(DbErr::Conn(
                sea_orm::RuntimeErr::Internal(
                    "database URL must start with sqlite: or postgres:".into(),
                ),
            )))
        }
    }

    /// Applies every pending migration.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// Names of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.db).await?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    }

    /// A cheap round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        Ok(())
    }

    /// The PostgreSQL pool, for LISTEN connections; `None` on SQLite.
    pub fn pg_pool(&self) -> Option<sqlx::PgPool> {
        (self.backend == Backend::Postgres).then(|| self.db.get_postgres_connection_pool().clone())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub(crate) fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Begins a write transaction.
    pub async fn begin_write(&self) -> Result<WriteTxn, DbErr> {
        let guard = match &self.write_lock {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        let txn = match self.backend {
            // IMMEDIATE takes SQLite's write lock at BEGIN, so a transaction that reads before
            // it writes cannot fail with SQLITE_BUSY_SNAPSHOT when a statement outside the
            // process lock (an auto-commit update) committed in between; it waits instead.
            Backend::Sqlite => {
                self.db
                    .begin_with_options(TransactionOptions {
                        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
                        ..TransactionOptions::default()
                    })
                    .await?
            }
            Backend::Postgres => self.db.begin().await?,
        };
        Ok(WriteTxn { txn, _guard: guard })
    }

    /// Runs raw SQL; for tests and operators' tools, never for request paths.
    pub async fn execute_sql(&self, sql: &str) -> Result<u64, StoreError> {
        Ok(self.db.execute_unprepared(sql).await?.rows_affected())
    }

    pub async fn close(self) -> Result<(), StoreError> {
        self.db.close().await?;
        Ok(())
    }
}

/// `$n` on PostgreSQL, `?` on SQLite.
pub(crate) fn placeholder(backend: DbBackend, n: usize) -> String {
    match backend {
        DbBackend::Postgres => format!("${n}"),
        _ => "?".to_string(),
    }
}
