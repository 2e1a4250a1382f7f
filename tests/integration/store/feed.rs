//! The partner feed's waiter on every database: woken by a commit (SQLite) or `NOTIFY`
//! (PostgreSQL), not by its clock.

use std::time::Duration;

use junction_domain::{Actor, RoutingTable};
use junction_store::sharing::{self, FeedWaiter};
use junction_store::{Store, catalogue};

use super::{actor, intake, pothole};
use crate::support::{all_databases, init};

#[tokio::test]
async fn the_feed_waiter_wakes_on_a_commit_not_on_a_clock() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        // An hour's safety poll: only the commit (SQLite) or NOTIFY (PostgreSQL) can end a
        // wait here.
        let mut waiter = FeedWaiter::with_safety_poll(&store, Duration::from_secs(3600)).await;
        let head = sharing::feed_head(&store).await.unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), waiter.wait(false))
                .await
                .is_err(),
            "nothing committed, so the wait must not end"
        );
        let case = intake(
            &store,
            &actor(),
            "bor",
            pothole(5),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        tokio::time::timeout(Duration::from_secs(60), waiter.wait(false))
            .await
            .expect("a fed commit wakes the waiter");
        // What woke it is already readable.
        let feed = sharing::feed_after(&store, head, 100, None).await.unwrap();
        assert_eq!(feed[0].event.case_id, case.id);
        assert_eq!(feed[0].event.kind.as_str(), "created");
    });
}
