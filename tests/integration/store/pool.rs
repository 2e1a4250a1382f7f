//! The store's connection pools: what each connection is given, and how a PostgreSQL
//! connection the server dropped is kept from a query.

use std::time::Duration;

use junction_store::{Store, has_stable_plans};

use crate::support::{TestDb, init};

/// SQLite plans each statement once: a bound `LIMIT ?` does not send a cached statement back
/// to be parsed and planned at every execution.
#[tokio::test]
async fn every_pooled_sqlite_connection_keeps_its_plans() {
    init();
    let db = TestDb::sqlite();
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    let pool = store.sqlite_pool().expect("a SQLite store");
    // Hold several at once, so that new connections are opened, not one reused.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut conn = pool.acquire().await.unwrap();
        assert!(
            has_stable_plans(&mut conn).await.unwrap(),
            "a pooled connection without the query planner stability guarantee"
        );
        held.push(conn);
    }
    drop(held);
    store.close().await.unwrap();
}

/// A PostgreSQL connection is not checked before each query, but one that has sat idle is:
/// when the server has dropped it meanwhile (a restart, a failover, an idle timeout), the
/// query runs on a new connection instead of failing.
#[tokio::test]
async fn an_idle_postgres_connection_the_server_dropped_is_replaced_not_used() {
    init();
    let Some(db) = TestDb::postgres().await else {
        return; // PostgreSQL is not configured for this run
    };
    let store = Store::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.ping().await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    // Every connection of the store's pool, as a restart would.
    let admin = sqlx::PgPool::connect(&db.url).await.unwrap();
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&admin)
    .await
    .unwrap();
    admin.close().await;
    assert!(!killed.is_empty(), "the store's connections were found");
    for attempt in 0..3 {
        store
            .ping()
            .await
            .unwrap_or_else(|e| panic!("query {attempt} after the server dropped the pool: {e}"));
    }
    store.close().await.unwrap();
}
