//! Sharing on every database: shares, the partner feed and disclosure records.

use junction_domain::{Actor, Agency, AgencyKind, Classification, RoutingTable};
use junction_store::audit;
use junction_store::cases::{self, CaseFilter};
use junction_store::catalogue;
use junction_store::{Store, StoreError};

use super::*;
use crate::support::{all_databases, init};

fn police_agreement(id: &str) -> junction_domain::Agreement {
    junction_domain::Agreement {
        id: id.into(),
        jurisdiction_id: "bor".into(),
        title: "Road crime".into(),
        partner_agency_id: "police".into(),
        case_types: vec!["POT".into()],
        purposes: vec!["crime_prevention".into()],
        lawful_basis: "Crime and Disorder Act 1998 s115".into(),
        ceiling: Classification::Official,
        fields: None,
        valid_from: chrono::Utc::now() - chrono::Duration::days(1),
        valid_to: None,
        review_date: None,
        status: junction_domain::AgreementStatus::Active,
    }
}

#[tokio::test]
async fn shares_the_feed_and_disclosures_on_every_database() {
    use junction_store::sharing::{self, ShareRequest};
    each_db!(|store| {
        let mut cat = catalogue();
        cat.agencies.push(Agency {
            id: "police".into(),
            jurisdiction_id: "bor".into(),
            name: "Police".into(),
            kind: AgencyKind::Partner,
            email: None,
        });
        catalogue::apply(&store, &Actor::internal("config"), &cat)
            .await
            .unwrap();
        let declared = vec![police_agreement("police-roads")];
        let applied = sharing::apply_config(&store, &Actor::internal("config"), &declared)
            .await
            .unwrap();
        assert_eq!(applied, vec!["agreement:police-roads created"]);
        // Re-applying an unchanged declaration changes nothing, and keeps a run-time suspension.
        sharing::set_agreement_status(
            &store,
            &actor(),
            "police-roads",
            junction_domain::AgreementStatus::Suspended,
            "review",
        )
        .await
        .unwrap();
        assert!(
            sharing::apply_config(&store, &Actor::internal("config"), &declared)
                .await
                .unwrap()
                .is_empty()
        );
        let stored = sharing::agreement(&store, "police-roads")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.agreement.status,
            junction_domain::AgreementStatus::Suspended
        );
        sharing::set_agreement_status(
            &store,
            &actor(),
            "police-roads",
            junction_domain::AgreementStatus::Active,
            "reviewed",
        )
        .await
        .unwrap();

        let head = sharing::feed_head(&store).await.unwrap();
        let case = intake(
            &store,
            &actor(),
            "bor",
            pothole(3),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        let request = ShareRequest {
            agency_id: "police",
            agreement_id: None,
            reason: "joint patrol",
            rule: None,
            notify_via: None,
        };
        let share = sharing::share(&store, &actor(), &case.id, request.clone())
            .await
            .unwrap();
        assert_eq!(share.agreement_id, "police-roads");
        assert!(matches!(
            sharing::share(&store, &actor(), &case.id, request).await,
            Err(StoreError::Conflict(_))
        ));
        cases::add_note(&store, &actor(), &case.id, "seen it")
            .await
            .unwrap();
        // The feed holds created, shared and note events, in order, after the old head; the
        // partner's view of it holds only shared cases.
        let feed = sharing::feed_after(&store, head, 100, None).await.unwrap();
        let kinds: Vec<&str> = feed.iter().map(|e| e.event.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "shared", "note_added"]);
        assert!(feed.windows(2).all(|w| w[0].seq + 1 == w[1].seq));
        let other = intake(
            &store,
            &actor(),
            "bor",
            pothole(4),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        cases::add_note(&store, &actor(), &other.id, "not shared")
            .await
            .unwrap();
        let partner = sharing::feed_after(&store, head, 100, Some("police"))
            .await
            .unwrap();
        assert!(partner.iter().all(|e| e.event.case_id == case.id));
        // A listed page only holds shared cases.
        let page = cases::list(
            &store,
            &CaseFilter {
                shared_with: Some(cases::SharedWith {
                    agency: "police".into(),
                    agreements: declared.clone(),
                }),
                ..Default::default()
            },
            10,
            None,
        )
        .await
        .unwrap();
        assert_eq!(page.total, 1);
        assert_eq!(page.cases[0].id, case.id);

        // Disclosures through the group-commit writer (locked and cached-head paths).
        let (writer, task) = audit::AuditWriter::start(store.clone());
        for i in 0..3 {
            let mut entry = Actor::internal("pc").entry();
            entry.disclosure = Some(junction_domain::AuditDisclosure {
                case_id: case.id.clone(),
                case_reference: case.reference.clone(),
                partner_agency: "police".into(),
                agreement_id: "police-roads".into(),
                purpose: "crime_prevention".into(),
                fields: vec![format!("submitter.name{i}")],
                channel: "http".into(),
            });
            writer.record_all(vec![entry]).await.unwrap();
        }
        drop(writer);
        task.await.unwrap();
        let found = sharing::disclosures(&store, &case.id).await.unwrap();
        assert_eq!(found.len(), 3);
        assert_eq!(found[2].disclosure.fields, vec!["submitter.name2"]);
        let report = audit::verify(&store).await.unwrap();
        assert_eq!(report.first_bad, None);

        // Unsharing ends the partner's view; removing an agreement with shares is refused.
        sharing::unshare(&store, &actor(), &case.id, "police", "done")
            .await
            .unwrap();
        assert!(
            sharing::live_shares(&store, std::slice::from_ref(&case.id))
                .await
                .unwrap()
                .is_empty()
        );
        let err = sharing::apply_config(&store, &Actor::internal("config"), &[])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::InUse(_)), "{err}");
    });
}
