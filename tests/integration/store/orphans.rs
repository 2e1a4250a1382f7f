//! Deliveries held by a process that is gone become ambiguous at once, on every database; the
//! gone process can no longer record an outcome for them.

use std::time::Duration;

use junction_domain::{Actor, DeliveryState, RetryPolicy};
use junction_store::deliveries::{self, Failure, Settle};
use junction_store::{Store, StoreError, audit, catalogue, processes};

use crate::support::{all_databases, init};

/// A case routed to `backend`, and its delivery's id.
async fn routed_case(store: &Store) -> junction_domain::DeliveryId {
    super::routed_to_backend(store).await.1
}

#[tokio::test]
async fn a_gone_process_leaves_ambiguous_deliveries_and_cannot_settle_them() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        let (mine, theirs) = (routed_case(&store).await, routed_case(&store).await);
        processes::register(&store, "alive").await.unwrap();
        // A process on this host whose pid no longer exists.
        processes::record(&store, "dead", &processes::this_host(), u32::MAX - 7)
            .await
            .unwrap();
        let lease = Duration::from_secs(600);
        let held = deliveries::claim(&store, "alive", mine, lease)
            .await
            .unwrap();
        assert_eq!(held.unwrap().lease_owner.as_deref(), Some("alive"));
        let lost = deliveries::claim(&store, "dead", theirs, lease)
            .await
            .unwrap();
        assert_eq!(lost.unwrap().state, DeliveryState::Sending);

        let now = chrono::Utc::now();
        let live = processes::live(&store, now).await.unwrap();
        assert_eq!(live, ["alive"], "the dead pid is known gone at once");
        let orphans = deliveries::recover_orphans(&store, &live, now)
            .await
            .unwrap();
        assert_eq!(orphans, [theirs]);
        let d = deliveries::get(&store, theirs).await.unwrap().unwrap();
        assert_eq!(d.state, DeliveryState::Ambiguous);
        assert!(d.ambiguous_since.is_some() && d.lease_owner.is_none());
        assert!(d.next_attempt_at <= chrono::Utc::now(), "due now");
        let kept = deliveries::get(&store, mine).await.unwrap().unwrap();
        assert_eq!(
            kept.state,
            DeliveryState::Sending,
            "a live process keeps its claim"
        );

        // The gone process's late answer is refused; the delivery stays ambiguous.
        let late = Settle::Failed {
            id: theirs,
            failure: Failure {
                error: "late".into(),
                response: None,
                permanent: false,
                ambiguous: false,
                token: None,
            },
            policy: RetryPolicy::default(),
        };
        let results = deliveries::settle_batch(&store, Some("dead"), &[late])
            .await
            .unwrap();
        assert!(matches!(&results[0], Err(StoreError::Conflict(_))));
        let d = deliveries::get(&store, theirs).await.unwrap().unwrap();
        assert_eq!(d.state, DeliveryState::Ambiguous);

        // Claimed again, it carries what is known: the outcome is still to be proved.
        let again = deliveries::claim(&store, "alive", theirs, lease)
            .await
            .unwrap()
            .unwrap();
        assert!(again.ambiguous_since.is_some());
        assert_eq!(again.attempts, 2);

        // An expired lease is an orphan too, even for a live process.
        let later = chrono::Utc::now() + chrono::Duration::hours(1);
        let orphans = deliveries::recover_orphans(&store, &live, later)
            .await
            .unwrap();
        assert_eq!(orphans.len(), 2);

        let filter = audit::AuditFilter {
            object_type: Some("delivery".into()),
            object_id: Some(theirs.to_string()),
            ..Default::default()
        };
        let (trail, _) = audit::list(&store, &filter, 10, None).await.unwrap();
        assert!(
            trail
                .iter()
                .filter(|r| r.entry.change.as_ref().unwrap().action == "orphaned")
                .count()
                == 2,
            "each recovery is audited"
        );
        assert!(audit::verify(&store).await.unwrap().first_bad.is_none());
    });
}
