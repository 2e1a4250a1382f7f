//! Applying the catalogue on every database: idempotent, audited, and never removing what is in use.

use junction_domain::{Actor, RoutingTable};
use junction_store::audit;
use junction_store::catalogue;
use junction_store::{Store, StoreError};

use super::*;
use crate::support::{all_databases, init};

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
