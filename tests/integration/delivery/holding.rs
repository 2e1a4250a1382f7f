//! Deliveries held and released: a paused connector, an ordered one, the queue on
//! PostgreSQL, and a case rerouted after a category change.

use super::*;

#[tokio::test]
async fn a_paused_connector_holds_and_resume_releases_in_order() {
    let rig = Rig::start(Behaviour::default(), 5).await;
    let manager = rig.server.token(&[Role::Manager]);
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            r#"mutation { pauseConnector(id: "backend", reason: "council upgrade tonight") }"#,
            json!({}),
        )
        .await;
    assert_eq!(data(&body)["pauseConnector"], true);
    let mut references = Vec::new();
    for i in 0..5 {
        references.push(rig.report(4, 1000 + i).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(rig.sim.requests().is_empty(), "nothing leaves while paused");
    for r in &references {
        assert_eq!(rig.main_delivery(r).await.state, DeliveryState::Pending);
    }
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            "{ connectors { id paused pausedReason } }",
            json!({}),
        )
        .await;
    let backend: Value = data(&body)["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "backend")
        .cloned()
        .unwrap();
    assert_eq!(backend["paused"], true);
    assert_eq!(backend["pausedReason"], "council upgrade tonight");

    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            r#"mutation { resumeConnector(id: "backend") }"#,
            json!({}),
        )
        .await;
    assert_eq!(data(&body)["resumeConnector"], false);
    for r in &references {
        assert_eq!(rig.settled(r, 20).await.state, DeliveryState::Sent);
    }
    let mut ids = Vec::new();
    for r in &references {
        ids.push(cases::get(rig.server.store(), r).await.unwrap().unwrap().id);
    }
    // All released, each once. (They are queued oldest first; with several workers they may
    // overtake one another in flight. An `ordered` connector keeps strict order: see below.)
    let mut arrived = rig.sim.arrivals();
    arrived.sort();
    ids.sort();
    assert_eq!(arrived, ids);

    // Pausing is audited with its reason.
    let records = junction_store::audit::list(
        rig.server.store(),
        &junction_store::audit::AuditFilter {
            object_type: Some("connector".into()),
            ..Default::default()
        },
        10,
        None,
    )
    .await
    .unwrap()
    .0;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r.entry.change.as_ref().map(|c| c.action.as_str()))
        .collect();
    assert_eq!(
        actions[..2],
        ["resume", "pause"],
        "newest first, after the catalogue's"
    );
    let _ = PauseTarget::Agency;
}

#[tokio::test]
async fn an_ordered_connector_takes_cases_one_at_a_time_in_the_order_they_came() {
    ordered_delivery(None).await;
    if let Some(db) = crate::support::TestDb::postgres().await {
        ordered_delivery(Some(&db.url)).await;
    }
}

async fn ordered_delivery(url: Option<&str>) {
    // The first case to reach the back-end is refused once (HTTP 500): the rest wait for it.
    let behaviour = Behaviour {
        fail_next: 1,
        ..Behaviour::default()
    };
    let rig = Rig::build(url, behaviour, 5, "", true, "").await;
    let manager = rig.server.token(&[Role::Manager]);
    rig.server
        .gql(
            Some(&manager),
            r#"mutation { pauseConnector(id: "backend", reason: "council upgrade tonight") }"#,
            json!({}),
        )
        .await;
    let mut references = Vec::new();
    for i in 0..6 {
        references.push(rig.report(4, 2000 + i).await);
    }
    let mut ids = Vec::new();
    for r in &references {
        ids.push(cases::get(rig.server.store(), r).await.unwrap().unwrap().id);
    }
    rig.server
        .gql(
            Some(&manager),
            r#"mutation { resumeConnector(id: "backend") }"#,
            json!({}),
        )
        .await;
    for r in &references {
        assert_eq!(rig.settled(r, 30).await.state, DeliveryState::Sent);
    }
    // Every case arrived once, in the order the cases were made, the refused one first.
    assert_eq!(rig.sim.arrivals(), ids);
    let first = rig.main_delivery(&references[0]).await;
    assert_eq!(first.attempts, 2, "{first:?}");
}

#[tokio::test]
async fn the_queue_runs_on_postgresql_too() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        return; // JUNCTION_TEST_DATABASE_URL is not set: SQLite only
    };
    let rig = Rig::start_on(
        Some(&db.url),
        Behaviour {
            fail_next: 1,
            ..Behaviour::default()
        },
        5,
    )
    .await;
    let reference = rig.report(12, 1101).await;
    let d = rig.settled(&reference, 30).await;
    assert_eq!((d.state, d.attempts), (DeliveryState::Sent, 2));
    assert_eq!(rig.sim.requests().len(), 1);
    let mails = eventually(20, "the P1 email", || async {
        let m = rig.smtp.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(mails.len(), 1);
    rig.server.stop().await;
}

#[tokio::test]
async fn rerouting_after_a_category_change_resends_and_keeps_the_old_reference() {
    // A back-end that keeps one request per case id, so the resend lands on the same one.
    let rig = Rig::start_with(
        Behaviour {
            dedupe: true,
            ..Behaviour::default()
        },
        5,
        r#"
[[routes]]
name = "fly-tipping to the back-end"
case_types = ["FLY"]
set = { connector = "backend", team = "street-cleaning" }
"#,
    )
    .await;
    let reference = rig.report(4, 1201).await;
    let first = rig.settled(&reference, 20).await;
    let old_ref = first.external_ref.clone().unwrap();

    let officer = rig.server.token(&[Role::Officer]);
    let (_, body) = rig
        .server
        .gql(
            Some(&officer),
            r#"mutation($id: ID!) { rerouteCase(id: $id, caseType: "FLY") { caseType { code } route fields } }"#,
            json!({"id": reference}),
        )
        .await;
    let c = &data(&body)["rerouteCase"];
    assert_eq!(c["caseType"]["code"], "FLY", "{body}");
    assert_eq!(c["route"]["rules"], json!(["fly-tipping to the back-end"]));
    assert_eq!(c["fields"], json!({}), "pothole fields do not carry over");

    // A second delivery to the back-end, under the new service code.
    let ds = eventually(20, "the resend", || async {
        let ds = rig.deliveries(&reference).await;
        (ds.len() == 2 && ds[1].state == DeliveryState::Sent).then_some(ds)
    })
    .await;
    assert_eq!(ds[0].state, DeliveryState::Sent);
    let posts: Vec<_> = rig.sim.requests();
    assert_eq!(
        posts.len(),
        1,
        "the back-end recognised the same case by its id"
    );
    assert_eq!(posts[0].posts, 2);

    let case = cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    let history = cases::history(rig.server.store(), &case.id).await.unwrap();
    let rerouted = history
        .iter()
        .rev()
        .find(|e| e.kind.as_str() == "routed")
        .unwrap();
    assert_eq!(
        rerouted.data["previous_external_refs"],
        json!([{"connector": "backend", "external_id": old_ref}])
    );
    assert_eq!(
        rerouted.data["case_type"],
        json!({"from": "POT", "to": "FLY"})
    );
    assert_eq!(rerouted.data["dropped_fields"]["depth_cm"], json!(4));
}
