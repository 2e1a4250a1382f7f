//! Back-end updates applied to cases, on every database: repeats have no effect, an older
//! update never overwrites a newer state, and an update that arrives before its case's
//! reference is held and applied in the transaction that records the reference.

use std::time::Duration;

use chrono::{DateTime, Utc};
use junction_domain::inbound::{Effect, InboundUpdate};
use junction_domain::{Actor, CaseStatus, Mapped};
use junction_store::deliveries::{self, Settle};
use junction_store::inbound::{self, Outcome};
use junction_store::{Store, audit, cases, catalogue, processes};

use crate::support::{all_databases, init};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn update(id: &str, reference: &str, status: &str, when: &str) -> InboundUpdate {
    InboundUpdate {
        update_id: id.into(),
        external_ref: reference.into(),
        our_id: None,
        status: Some(status.into()),
        external_status_code: None,
        description: format!("{status} at {when}"),
        media_urls: vec![],
        updated_at: at(when),
    }
}

fn to(s: CaseStatus) -> Mapped {
    Mapped::Status(s)
}

/// A case routed to `backend` and delivered there as `reference`.
async fn delivered(
    store: &Store,
    reference: Option<&str>,
) -> (String, junction_domain::DeliveryId) {
    let (case, id) = super::routed_to_backend(store).await;
    if let Some(reference) = reference {
        settle(store, id, reference).await;
    }
    (case.id, id)
}

async fn settle(store: &Store, id: junction_domain::DeliveryId, reference: &str) {
    processes::register(store, "me").await.unwrap();
    deliveries::claim(store, "me", id, Duration::from_secs(600))
        .await
        .unwrap()
        .unwrap();
    let sent = Settle::Sent {
        id,
        external_ref: Some(reference.into()),
        response: None,
        found: None,
        notes: vec![],
    };
    let results = deliveries::settle_batch(store, Some("me"), &[sent])
        .await
        .unwrap();
    assert!(results[0].is_ok(), "{:?}", results[0]);
}

async fn connector_updates(store: &Store, case_id: &str) -> Vec<junction_domain::CaseUpdate> {
    junction_store::updates::for_case(store, case_id)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.source == "connector:backend")
        .collect()
}

#[tokio::test]
async fn repeats_change_nothing_and_an_older_update_never_overwrites_a_newer_state() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        let (case_id, _) = delivered(&store, Some("HW-1")).await;
        let fixed = update("u2", "HW-1", "fixed", "2026-12-08T10:00:00Z");
        let progress = update("u1", "HW-1", "in_progress", "2026-12-08T09:00:00Z");
        // The back-end lists the newer update first, then repeats it, then the older one
        // arrives in a mop-up.
        let batch = [
            (fixed.clone(), to(CaseStatus::Fixed)),
            (fixed.clone(), to(CaseStatus::Fixed)),
            (progress.clone(), to(CaseStatus::InProgress)),
        ];
        let outcomes = inbound::apply_batch(&store, "backend", &batch)
            .await
            .unwrap();
        let effects: Vec<Option<(String, Effect)>> = outcomes
            .iter()
            .map(|o| match o {
                Outcome::Applied {
                    case_id, effect, ..
                } => Some((case_id.clone(), *effect)),
                _ => None,
            })
            .collect();
        assert_eq!(
            effects,
            [
                Some((case_id.clone(), Effect::Moves(CaseStatus::Fixed))),
                None,
                Some((case_id.clone(), Effect::OutOfOrder(CaseStatus::InProgress))),
            ]
        );
        assert_eq!(outcomes[1], Outcome::Repeat);
        let case = cases::get(&store, &case_id).await.unwrap().unwrap();
        assert_eq!(case.status, CaseStatus::Fixed, "the newer state stands");
        assert_eq!(case.status_at, Some(at("2026-12-08T10:00:00Z")));
        let kept = connector_updates(&store, &case_id).await;
        assert_eq!(kept.len(), 2, "each update once, the older kept in history");
        assert!(kept.iter().all(|u| u.case_status == CaseStatus::Fixed));

        // Polled again the next window: nothing changes.
        let again = inbound::apply_batch(&store, "backend", &batch)
            .await
            .unwrap();
        assert!(again.iter().all(|o| *o == Outcome::Repeat));
        assert_eq!(connector_updates(&store, &case_id).await.len(), 2);

        // A note moves nothing; a newer status does.
        let note = (
            update("u3", "HW-1", "awaiting parts", "2026-12-08T11:00:00Z"),
            Mapped::NoteOnly,
        );
        let reopen = (
            update("u4", "HW-1", "open", "2026-12-08T12:00:00Z"),
            to(CaseStatus::Open),
        );
        inbound::apply_batch(&store, "backend", &[note, reopen])
            .await
            .unwrap();
        let case = cases::get(&store, &case_id).await.unwrap().unwrap();
        assert_eq!(case.status, CaseStatus::Open);
        assert!(audit::verify(&store).await.unwrap().first_bad.is_none());
    });
}

#[tokio::test]
async fn an_update_before_its_reference_is_held_then_applied_when_the_reference_arrives() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        let (case_id, delivery) = delivered(&store, None).await;
        let early = update("e1", "HW-9", "in_progress", "2026-12-08T09:00:00Z");
        let outcomes = inbound::apply_batch(
            &store,
            "backend",
            &[(early.clone(), to(CaseStatus::InProgress))],
        )
        .await
        .unwrap();
        assert_eq!(outcomes, [Outcome::Held]);
        assert_eq!(inbound::held_for(&store, "backend").await.unwrap().len(), 1);
        // Read again before the reference is known: still held once.
        let again = inbound::apply_batch(&store, "backend", &[(early, to(CaseStatus::InProgress))])
            .await
            .unwrap();
        assert_eq!(again, [Outcome::Repeat]);

        settle(&store, delivery, "HW-9").await;
        let case = cases::get(&store, &case_id).await.unwrap().unwrap();
        assert_eq!(
            case.status,
            CaseStatus::InProgress,
            "applied with the reference"
        );
        assert_eq!(connector_updates(&store, &case_id).await.len(), 1);
        assert!(
            inbound::held_for(&store, "backend")
                .await
                .unwrap()
                .is_empty()
        );
        // Nothing left to release, and the update is not applied twice.
        assert_eq!(inbound::release_known(&store, "backend").await.unwrap(), 0);
        assert_eq!(connector_updates(&store, &case_id).await.len(), 1);
        assert!(audit::verify(&store).await.unwrap().first_bad.is_none());
    });
}

#[tokio::test]
async fn a_back_end_never_reaches_a_case_its_connector_was_not_sent() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &super::catalogue())
            .await
            .unwrap();
        let (case_id, _) = delivered(&store, Some("HW-5")).await;
        // Another connector's back-end names the case by our id and by this reference.
        let mut probe = update("x1", "HW-5", "fixed", "2026-12-08T10:00:00Z");
        probe.our_id = Some(case_id.clone());
        let outcomes = inbound::apply_batch(&store, "elsewhere", &[(probe, to(CaseStatus::Fixed))])
            .await
            .unwrap();
        assert_eq!(
            outcomes,
            [Outcome::Held],
            "not matched to a case it was not sent"
        );
        let case = cases::get(&store, &case_id).await.unwrap().unwrap();
        assert_eq!(case.status, CaseStatus::Open);
        assert!(
            junction_store::updates::for_case(&store, &case_id)
                .await
                .unwrap()
                .is_empty()
        );
    });
}
