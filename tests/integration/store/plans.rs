//! SQLite plans each statement once: a bound `LIMIT ?` does not send a cached statement back
//! to be parsed and planned at every execution.

use junction_store::{Store, has_stable_plans};

use crate::support::{TestDb, init};

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
