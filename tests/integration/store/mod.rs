//! The store's test suite, written once and run against every database in [`all_databases`]:
//! SQLite always, PostgreSQL when `JUNCTION_TEST_DATABASE_URL` is set.

use std::collections::BTreeMap;

use junction_domain::{
    Actor, Agency, AgencyKind, CaseStatus, CaseType, Classification, Datatype, FieldDef,
    Jurisdiction, Location, NewCase, RoutingTable, Submitter,
};
use junction_store::audit;
use junction_store::cases::{self, CaseFilter};
use junction_store::catalogue::{self, Catalogue, ConnectorRecord};
use junction_store::{Store, StoreError};
use serde_json::json;

use crate::support::{all_databases, init};

/// Takes `new` in as every surface does, through intake: validated, routed and planned, then
/// stored with its deliveries.
pub(crate) async fn intake(
    store: &Store,
    actor: &Actor,
    jurisdiction: &str,
    new: NewCase,
    routing: &RoutingTable,
) -> Result<junction_domain::Case, StoreError> {
    intake_with(
        store,
        actor,
        jurisdiction,
        new,
        routing,
        cases::Arrival::default(),
    )
    .await
    .map(|c| c.case)
}

/// As [`intake`], with what came with the case.
pub(crate) async fn intake_with(
    store: &Store,
    actor: &Actor,
    jurisdiction: &str,
    new: NewCase,
    routing: &RoutingTable,
    arrival: cases::Arrival<'_>,
) -> Result<cases::Created, StoreError> {
    let tables = BTreeMap::from([(jurisdiction.to_string(), routing.clone())]);
    junction_api::Intake::new(
        store.clone(),
        std::sync::Arc::new(tables),
        std::sync::Arc::new(junction_api::NoWaker),
    )
    .create(actor, jurisdiction, new, arrival)
    .await
}

/// Runs `body` once per database, naming the database in any failure.
macro_rules! each_db {
    (|$store:ident| $body:block) => {{
        init();
        for (name, db) in all_databases().await {
            let $store = Store::connect(&db.url).await.unwrap();
            $store.migrate().await.unwrap();
            let result = tokio::spawn({
                let $store = $store.clone();
                async move { $body }
            })
            .await;
            $store.close().await.unwrap();
            drop(db);
            if let Err(e) = result {
                panic!("on {name}: {e}");
            }
        }
    }};
}

mod case_records;
mod chain;
mod feed;
mod orphans;
mod pool;

fn catalogue() -> Catalogue {
    Catalogue {
        jurisdictions: vec![Jurisdiction {
            id: "bor".into(),
            name: "Borsetshire".into(),
        }],
        agencies: vec![
            Agency {
                id: "highways".into(),
                jurisdiction_id: "bor".into(),
                name: "Highways".into(),
                kind: AgencyKind::Department,
                email: None,
            },
            Agency {
                id: "env".into(),
                jurisdiction_id: "bor".into(),
                name: "Env".into(),
                kind: AgencyKind::Department,
                email: None,
            },
        ],
        case_types: vec![CaseType {
            jurisdiction_id: "bor".into(),
            code: "POT".into(),
            name: "Pothole".into(),
            description: String::new(),
            group: None,
            keywords: vec![],
            agency_id: "highways".into(),
            active: true,
            published: true,
            max_description_chars: junction_domain::case::DEFAULT_MAX_DESCRIPTION_CHARS,
            statuses: Default::default(),
            fields: vec![FieldDef {
                code: "depth".into(),
                description: "Depth".into(),
                datatype: Datatype::Number,
                required: true,
                order: 1,
                classification: Classification::Public,
                values: vec![],
                datatype_description: None,
            }],
        }],
        connectors: vec![ConnectorRecord {
            id: "hw".into(),
            kind: "webhook".into(),
            params: json!({"url": "http://127.0.0.1:1/x", "signing_secret": "${HW_SECRET}"}),
            paused: false,
        }],
    }
}

fn actor() -> Actor {
    Actor {
        subject: "alice".into(),
        roles: vec!["officer".into()],
        ..Actor::default()
    }
}

fn pothole(depth: i64) -> NewCase {
    NewCase {
        case_type_code: "POT".into(),
        description: "Deep hole".into(),
        location: Location {
            lat: Some(50.71),
            long: Some(-2.44),
            uprn: None,
            address: None,
        },
        submitter: Submitter {
            name: Some("Pat".into()),
            email: Some("pat@example.org".into()),
            phone: None,
        },
        fields: BTreeMap::from([("depth".to_string(), json!(depth))]),
        source_ref: None,
        media_urls: Vec::new(),
    }
}

#[tokio::test]
async fn catalogue_apply_is_idempotent_and_audited() {
    each_db!(|store| {
        let first = catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        assert_eq!(first.created.len(), 5, "{first:?}");
        let again = catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        assert!(again.is_empty(), "second apply changed {again:?}");
        let mut changed = catalogue();
        changed.agencies[1].name = "Environmental Health".into();
        let third = catalogue::apply(&store, &Actor::internal("config"), &changed)
            .await
            .unwrap();
        assert_eq!(third.updated, vec!["agency:env"]);
        let filter = audit::AuditFilter {
            object_id: Some("env".into()),
            ..Default::default()
        };
        let (records, _) = audit::list(&store, &filter, 10, None).await.unwrap();
        let actions: Vec<&str> = records
            .iter()
            .map(|r| r.entry.change.as_ref().unwrap().action.as_str())
            .collect();
        assert_eq!(actions, ["update", "create"]);
        let update = records[0].entry.change.as_ref().unwrap();
        assert_eq!(update.before["name"], "Env");
        assert_eq!(update.after["name"], "Environmental Health");
    });
}

#[tokio::test]
async fn removing_a_case_type_in_use_is_refused_and_changes_nothing() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        intake(
            &store,
            &actor(),
            "bor",
            pothole(5),
            &RoutingTable::default(),
        )
        .await
        .unwrap();
        let mut without = catalogue();
        without.case_types.clear();
        without.agencies[1].name = "Renamed".into();
        let err = catalogue::apply(&store, &Actor::internal("config"), &without)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::InUse(m) if m.contains("case type `POT`") && m.contains("active = false")),
            "{err}"
        );
        // The rename in the same apply was rolled back with it.
        assert_eq!(
            catalogue::agency(&store, "env")
                .await
                .unwrap()
                .unwrap()
                .name,
            "Env"
        );
        // Retiring instead of removing works, and refuses new cases.
        let mut retired = catalogue();
        retired.case_types[0].active = false;
        catalogue::apply(&store, &Actor::internal("config"), &retired)
            .await
            .unwrap();
        let err = intake(
            &store,
            &actor(),
            "bor",
            pothole(5),
            &RoutingTable::default(),
        )
        .await
        .unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(ref e) if e.0[0].field == "caseType"),
            "{err}"
        );
    });
}

#[tokio::test]
async fn listing_pages_and_filters() {
    each_db!(|store| {
        catalogue::apply(&store, &Actor::internal("config"), &catalogue())
            .await
            .unwrap();
        let mut ids = Vec::new();
        for depth in 0..7 {
            ids.push(
                intake(
                    &store,
                    &actor(),
                    "bor",
                    pothole(depth),
                    &RoutingTable::default(),
                )
                .await
                .unwrap()
                .id,
            );
        }
        cases::change_status(&store, &actor(), &ids[2], CaseStatus::Fixed, None)
            .await
            .unwrap();
        let first = cases::list(&store, &CaseFilter::default(), 3, None)
            .await
            .unwrap();
        assert!(first.has_next);
        assert_eq!(first.total, 7);
        let newest: Vec<&str> = first.cases.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(newest, [ids[6].as_str(), ids[5].as_str(), ids[4].as_str()]);
        let mut seen = newest.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let mut after = first.cases.last().map(|c| c.id.clone());
        loop {
            let page = cases::list(&store, &CaseFilter::default(), 3, after.as_deref())
                .await
                .unwrap();
            seen.extend(page.cases.iter().map(|c| c.id.clone()));
            if !page.has_next {
                break;
            }
            after = page.cases.last().map(|c| c.id.clone());
        }
        seen.reverse();
        assert_eq!(seen, ids, "every case exactly once, in order");
        let fixed = CaseFilter {
            statuses: vec![CaseStatus::Fixed],
            ..Default::default()
        };
        let page = cases::list(&store, &fixed, 10, None).await.unwrap();
        assert_eq!(
            (page.total, page.cases[0].id.as_str()),
            (1, ids[2].as_str())
        );
        let by_type = CaseFilter {
            case_types: vec!["POT".into()],
            agency: Some("highways".into()),
            ..Default::default()
        };
        assert_eq!(
            cases::list(&store, &by_type, 10, None).await.unwrap().total,
            7
        );
        let other = CaseFilter {
            agency: Some("env".into()),
            ..Default::default()
        };
        assert_eq!(
            cases::list(&store, &other, 10, None).await.unwrap().total,
            0
        );
        let future = CaseFilter {
            created_from: Some(chrono::Utc::now() + chrono::Duration::hours(1)),
            ..Default::default()
        };
        assert_eq!(
            cases::list(&store, &future, 10, None).await.unwrap().total,
            0
        );
    });
}

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
