//! Applying configuration to a running database: idempotent, and never silently losing data.

use junction_domain::Role;
use serde_json::Value;

use crate::support::{CATALOGUE, TestDb, TestServer, data};

#[tokio::test]
async fn restarting_with_the_same_config_changes_nothing_and_removal_in_use_is_refused() {
    for (name, db) in crate::support::all_databases().await {
        let server = TestServer::start_on(&db.url, CATALOGUE).await;
        let officer = server.token(&[Role::Officer]);
        let create = r#"mutation { createCase(input: {caseType: "FLY", description: "Sofa", location: {address: "Lane End"}}) { id } }"#;
        let (_, body) = server.gql(Some(&officer), create, Value::Null).await;
        data(&body);
        let audit_before = junction_store::audit::count(server.store()).await.unwrap();
        server.stop().await;

        let server = TestServer::start_on(&db.url, CATALOGUE).await;
        assert_eq!(
            junction_store::audit::count(server.store()).await.unwrap(),
            audit_before,
            "{name}: re-applying wrote nothing"
        );
        server.stop().await;

        // FLY has a case: dropping it from the file must fail start-up, naming it.
        let without_fly = CATALOGUE
            .split("[[case_types]]\ncode = \"FLY\"")
            .next()
            .unwrap()
            .to_string();
        let dir = tempfile::tempdir().unwrap();
        let path = crate::support::write_config(&dir, &db.url, "", &without_fly);
        let loaded = junction_server::config::load(&path).unwrap();
        let err = match junction_server::start(loaded).await {
            Ok(_) => panic!("{name}: start-up must fail"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("case type `FLY`") && err.contains("cannot be removed"),
            "{name}: {err}"
        );
        drop(db);
    }
    let _ = TestDb::sqlite();
}
