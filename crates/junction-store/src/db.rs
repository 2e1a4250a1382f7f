//! Connecting to SQLite or PostgreSQL, migrating, and write transactions.
//!
//! SQLite runs in WAL mode with `synchronous=FULL`, so a commit is on disk before it returns,
//! write transactions begin `IMMEDIATE`, and writes within one process are serialised by a
//! lock taken before `BEGIN`: a deferred
//! SQLite transaction that reads and then writes can otherwise fail at once with `SQLITE_BUSY`
//! when another connection committed in between. PostgreSQL needs no such lock.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use junction_migrations::{Migrator, MigratorTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, SqlxPostgresConnector, SqlxSqliteConnector, TransactionOptions,
    TransactionTrait,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use crate::StoreError;
use crate::pool::{pg_pool_options, sqlite_pool_options};

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
    /// On SQLite, counts committed write transactions, so an idle partner feed in this process
    /// waits for one rather than polling. PostgreSQL has `NOTIFY` for that.
    commits: Option<Arc<watch::Sender<u64>>>,
    /// The database file, on SQLite (not for an in-memory database).
    sqlite_file: Option<Arc<PathBuf>>,
    /// Statements run through this store's pool, since it connected.
    statements: Arc<std::sync::atomic::AtomicU64>,
}

/// A write transaction. On SQLite it also holds the process's write lock until it ends.
pub struct WriteTxn {
    txn: DatabaseTransaction,
    commits: Option<Arc<watch::Sender<u64>>>,
    _guard: Option<OwnedMutexGuard<()>>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;
    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

impl WriteTxn {
    /// Commits, then (on SQLite) tells this process's commit watchers, before the write lock
    /// is released.
    pub async fn commit(self) -> Result<(), DbErr> {
        self.txn.commit().await?;
        if let Some(commits) = &self.commits {
            commits.send_modify(|n| *n = n.wrapping_add(1));
        }
        Ok(())
    }
}

impl Store {
    /// Counts every statement the pool runs, here and in `junction_db_statements_total`.
    fn counted(mut self) -> Store {
        let statements = self.statements.clone();
        self.db.set_metric_callback(move |_| {
            statements.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            metrics::counter!("junction_db_statements_total").increment(1);
        });
        self
    }

    /// Statements run through this store's pool since it connected (not the SQLite audit
    /// writer's own connection).
    pub fn statements(&self) -> u64 {
        self.statements.load(std::sync::atomic::Ordering::Relaxed)
    }

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
            let sqlite_file = (!in_memory).then(|| Arc::new(options.get_filename().to_path_buf()));
            if let Some(path) = &sqlite_file {
                create_owner_only(path)?;
            }
            let pool = sqlite_pool_options()
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
                commits: Some(Arc::new(watch::Sender::new(0))),
                sqlite_file,
                statements: Default::default(),
            }
            .counted())
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url).map_err(|e| {
                DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                    "bad PostgreSQL URL: {e}"
                )))
            })?;
            let port = options.get_port();
            let pool = pg_pool_options()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(15))
                .after_connect(move |_, _| {
                    Box::pin(async move {
                        no_delay::to_port(port);
                        Ok(())
                    })
                })
                .connect_with(options)
                .await
                .map_err(|e| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into())))?;
            Ok(Store {
                db: SqlxPostgresConnector::from_sqlx_postgres_pool(pool),
                backend: Backend::Postgres,
                write_lock: None,
                commits: None,
                sqlite_file: None,
                statements: Default::default(),
            }
            .counted())
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

    /// The SQLite pool; `None` on PostgreSQL.
    pub fn sqlite_pool(&self) -> Option<sqlx::SqlitePool> {
        (self.backend == Backend::Sqlite).then(|| self.db.get_sqlite_connection_pool().clone())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The SQLite database file, when the store is one.
    pub(crate) fn sqlite_file(&self) -> Option<&Path> {
        self.sqlite_file.as_deref().map(PathBuf::as_path)
    }

    /// On SQLite, a receiver that sees every write transaction this process commits through
    /// [`Store::begin_write`] (it counts them); `None` on PostgreSQL.
    pub(crate) fn commit_watch(&self) -> Option<watch::Receiver<u64>> {
        self.commits.as_ref().map(|c| c.subscribe())
    }

    /// The lock every SQLite writer in this process takes before `BEGIN`.
    pub(crate) fn sqlite_write_lock(&self) -> Arc<Mutex<()>> {
        self.write_lock.clone().unwrap_or_default()
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
        Ok(WriteTxn {
            txn,
            commits: self.commits.clone(),
            _guard: guard,
        })
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

/// sqlx 0.9.0 opens its TCP connections without `TCP_NODELAY` (sqlx issue 4335; fixed upstream
/// by pull request 4336, not yet released). Without it, a statement bigger than the socket's
/// first send buffer (16 KiB on Linux) waits for the server's delayed ACK: about 40 ms. An audit
/// batch of 30 records is that big. Until a fixed sqlx is out, every new connection sets the
/// option on this process's TCP sockets connected to the database's port, which sqlx does not
/// let us reach directly. Elsewhere than Linux this does nothing.
mod no_delay {
    #[cfg(target_os = "linux")]
    pub fn to_port(port: u16) {
        use std::mem::ManuallyDrop;
        use std::net::TcpStream;
        use std::os::fd::{FromRawFd, RawFd};

        let Ok(fds) = std::fs::read_dir("/proc/self/fd") else {
            return;
        };
        for fd in fds.flatten() {
            let Some(fd) = fd
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<RawFd>().ok())
            else {
                continue;
            };
            // SAFETY: the stream is never dropped, so the descriptor is not closed here; it is
            // only asked for its peer and, when that is the database, given an option. A
            // descriptor closed meanwhile fails both calls; one reused meanwhile is at worst
            // another TCP socket to the same port given the same harmless option.
            let stream = ManuallyDrop::new(unsafe { TcpStream::from_raw_fd(fd) });
            if stream.peer_addr().is_ok_and(|a| a.port() == port)
                && let Err(e) = stream.set_nodelay(true)
            {
                tracing::debug!(fd, error = %e, "TCP_NODELAY not set");
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn to_port(_port: u16) {}
}

/// Creates the SQLite file, readable and writable by its owner only, if it does not exist.
/// SQLite gives its `-wal` and `-shm` files the database file's permissions.
fn create_owner_only(path: &std::path::Path) -> Result<(), DbErr> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
            "creating the SQLite file {}: {e}",
            path.display()
        )))),
    }
}
