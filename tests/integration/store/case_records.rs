//! Cases in the store on every database: created with history, files and audit in one
//! transaction, refused whole when invalid, and versioned status changes that never lose one.

use super::*;

#[tokio::test]
async fn cases_are_created_with_history_and_audit_in_one_transaction() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let case = intake(
            &store,
            &actor(),
            "bor",
            pothole(7),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        assert_eq!(case.reference, "1");
        assert_eq!(case.agency_id, "highways");
        assert_eq!(case.fields["depth"], json!(7));
        let loaded = cases::get(&store, &case.reference).await.unwrap().unwrap();
        assert_eq!(loaded, case);
        let history = cases::history(&store, &case.id).await.unwrap();
        let kinds: Vec<&str> = history.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["created", "routed"]);
        let filter = audit::AuditFilter {
            object_type: Some("case".into()),
            ..Default::default()
        };
        let (records, _) = audit::list(&store, &filter, 10, None).await.unwrap();
        let after = &records[0].entry.change.as_ref().unwrap().after;
        assert_eq!(
            after["submitter"]["email"], "[personal]",
            "personal data stays out of the audit log"
        );
        assert_eq!(after["fields"]["depth"], 7);
    });
}

#[tokio::test]
async fn files_are_stored_with_their_case_on_every_database() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
        let files = [junction_domain::NewAttachment {
            part: "photo1".into(),
            file_name: "9.0.full.jpeg".into(),
            content_type: "image/jpeg".into(),
            data: bytes.clone(),
        }];
        let case = intake_with(
            &store,
            &actor(),
            "bor",
            pothole(7),
            &RoutingTable::default(),
            cases::Arrival {
                files: &files,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .case;
        let listed = junction_store::attachments::of_case(&store, &case.id)
            .await
            .unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, 70_000);
        let (file, data) = junction_store::attachments::get(&store, listed[0].id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(file, listed[0]);
        assert_eq!(data, bytes, "the bytes come back exactly");
        // The creation record names the file by digest, never its bytes.
        let filter = audit::AuditFilter {
            object_type: Some("case".into()),
            ..Default::default()
        };
        let (records, _) = audit::list(&store, &filter, 10, None).await.unwrap();
        let after = &records[0].entry.change.as_ref().unwrap().after;
        assert_eq!(after["attachments"][0]["sha256"], file.sha256.as_str());
        // A case that fails validation is refused before anything is written.
        let mut bad = pothole(1);
        bad.location.lat = Some(123.0);
        let err = intake_with(
            &store,
            &actor(),
            "bor",
            bad,
            &RoutingTable::default(),
            cases::Arrival {
                files: &files,
                ..Default::default()
            },
        )
        .await;
        assert!(matches!(err, Err(StoreError::Invalid(_))), "{err:?}");
    });
}

#[tokio::test]
async fn invalid_cases_name_their_fields_and_store_nothing() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let mut bad = pothole(1);
        bad.fields.clear();
        bad.location.lat = Some(123.0);
        let err = intake(&store, &actor(), "bor", bad, &RoutingTable::default())
            .await
            .unwrap_err();
        let StoreError::Invalid(errors) = err else {
            panic!("expected invalid")
        };
        let fields: Vec<&str> = errors.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["location.lat", "fields.depth"]);
        let page = cases::list(&store, &CaseFilter::default(), 10, None)
            .await
            .unwrap();
        assert_eq!(page.total, 0);
        assert_eq!(
            audit::count(&store).await.unwrap(),
            5,
            "only the catalogue's records"
        );
    });
}

#[tokio::test]
async fn status_changes_are_versioned() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let case = intake(
            &store,
            &actor(),
            "bor",
            pothole(3),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        let moved =
            cases::change_status(&store, &actor(), &case.id, CaseStatus::InProgress, Some(1))
                .await
                .unwrap();
        assert_eq!((moved.status, moved.version), (CaseStatus::InProgress, 2));
        let stale = cases::change_status(&store, &actor(), &case.id, CaseStatus::Fixed, Some(1))
            .await
            .unwrap_err();
        assert!(matches!(stale, StoreError::Conflict(_)), "{stale}");
        let same = cases::change_status(&store, &actor(), &case.id, CaseStatus::InProgress, None)
            .await
            .unwrap_err();
        assert!(
            matches!(same, StoreError::Conflict(ref m) if m.contains("already")),
            "{same}"
        );
        let missing =
            cases::change_status(&store, &actor(), "no-such-case", CaseStatus::Fixed, None)
                .await
                .unwrap_err();
        assert!(matches!(missing, StoreError::NotFound { .. }));
        let note = cases::add_note(&store, &actor(), &case.id, "  crew booked  ")
            .await
            .unwrap();
        assert_eq!(note.data["note"], "crew booked");
        let kinds: Vec<&str> = cases::history(&store, &case.id)
            .await
            .unwrap()
            .iter()
            .map(|e| e.kind.as_str())
            .collect::<Vec<_>>()
            .into_iter()
            .collect();
        assert_eq!(kinds, ["created", "routed", "status_changed", "note_added"]);
        assert_eq!(
            cases::get(&store, &case.id).await.unwrap().unwrap().version,
            3
        );
    });
}

#[tokio::test]
async fn concurrent_status_changes_never_lose_an_update() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let case = intake(
            &store,
            &actor(),
            "bor",
            pothole(3),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            let id = case.id.clone();
            tasks.push(tokio::spawn(async move {
                cases::add_note(&store, &actor(), &id, &format!("note {i}")).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(
            cases::get(&store, &case.id).await.unwrap().unwrap().version,
            21
        );
        // created, routed, and one event per change
        assert_eq!(cases::history(&store, &case.id).await.unwrap().len(), 22);
        assert_eq!(audit::verify(&store).await.unwrap().first_bad, None);
    });
}
