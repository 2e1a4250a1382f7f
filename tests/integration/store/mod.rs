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

/// A pothole routed to the `backend` connector, and its delivery's id.
pub(super) async fn routed_to_backend(
    store: &Store,
) -> (junction_domain::Case, junction_domain::DeliveryId) {
    let mut routing = junction_domain::RoutingTable::default();
    routing
        .methods
        .agency_connectors
        .insert("highways".into(), "backend".into());
    let case = intake(store, &actor(), "bor", pothole(5), &routing)
        .await
        .unwrap();
    let id = junction_store::deliveries::for_case(store, &case.id)
        .await
        .unwrap()[0]
        .id;
    (case, id)
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
mod catalogue_apply;
mod chain;
mod feed;
mod inbound;
mod listing;
mod orphans;
mod pool;
mod sharing;

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
