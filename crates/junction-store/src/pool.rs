//! What Junction's connection pools give each connection, and when they check one
//! (`docs/adr/0010`). The store's pools and the queue's are built from these options.

use std::ffi::c_int;
use std::time::Duration;

use rusqlite::ffi;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnection, SqlitePoolOptions};

/// Pool options for Junction's SQLite pools (the store's and the queue's).
///
/// - No check before a check-out. For SQLite it would be a message to the connection's own
///   thread, which only answers it: a round trip between threads that tests nothing, since an
///   in-process connection cannot have been dropped by a server.
/// - Every new connection gets [`stable_plans`].
pub fn sqlite_pool_options() -> SqlitePoolOptions {
    SqlitePoolOptions::new()
        .test_before_acquire(false)
        .after_connect(|conn, _| Box::pin(stable_plans(conn)))
}

/// Has SQLite plan each statement once, whatever values are later bound to it (its "query
/// planner stability guarantee").
///
/// Without it, SQLite (since 3.47) reads the value bound to a `LIMIT ?` while preparing, and
/// marks the statement to be prepared afresh whenever that parameter is bound again. sea-orm
/// binds every limit, `one()` included, and apalis binds its fetch size, so each execution of
/// a cached statement was parsed and planned again: about 300,000 instructions for one read
/// of a case by id. With the guarantee, a bound limit is executed as a value, as every other
/// parameter is.
pub async fn stable_plans(conn: &mut SqliteConnection) -> Result<(), sqlx::Error> {
    let rc = plan_stability(conn, 1).await?.0;
    if rc != ffi::SQLITE_OK {
        return Err(sqlx::Error::Configuration(
            format!("SQLite refused the query planner stability guarantee (code {rc})").into(),
        ));
    }
    Ok(())
}

/// Whether a connection has the guarantee [`stable_plans`] asks for.
pub async fn has_stable_plans(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    let (rc, on) = plan_stability(conn, -1).await?;
    Ok(rc == ffi::SQLITE_OK && on == 1)
}

/// Sets the guarantee (`set` 1 or 0) or leaves it (-1); returns SQLite's result code and the
/// setting as it now is.
async fn plan_stability(
    conn: &mut SqliteConnection,
    set: c_int,
) -> Result<(c_int, c_int), sqlx::Error> {
    let mut handle = conn.lock_handle().await?;
    let db = handle.as_raw_handle().as_ptr();
    let mut now: c_int = -1;
    // SAFETY: `db` is this connection's open handle, held locked for the call, and
    // `SQLITE_DBCONFIG_ENABLE_QPSG` takes an int (1 on, 0 off, -1 unchanged) and a pointer to
    // an int that receives the setting.
    let rc = unsafe {
        ffi::sqlite3_db_config(
            db,
            ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            set,
            &mut now as *mut c_int,
        )
    };
    Ok((rc, now))
}

/// A PostgreSQL connection idle this long is checked with a round trip before it is handed
/// out; one used more recently is not. (HikariCP, the JVM's common pool, skips its check
/// within the same window.)
const RECHECK_IDLE_AFTER: Duration = Duration::from_millis(500);

/// Pool options for Junction's PostgreSQL pools (the store's and the queue's).
///
/// sqlx checks a connection with a round trip to the server before each check-out, and again
/// when it comes back. The check on the way back stays; the one on the way out is kept for
/// connections idle long enough to have been dropped unnoticed. One used moments ago (by the
/// audit writer's last batch, the last request or the last poll) goes out at once: under load
/// that is one round trip per query fewer.
pub fn pg_pool_options() -> PgPoolOptions {
    PgPoolOptions::new()
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for >= RECHECK_IDLE_AFTER {
                    sqlx::Connection::ping(conn).await?;
                }
                Ok(true)
            })
        })
}
