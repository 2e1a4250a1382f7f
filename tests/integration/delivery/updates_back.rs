//! What back-ends say back: Junction polls the simulator's `GET servicerequestupdates` on its
//! schedule (made due at once, as a manager's "run now" does), maps statuses through the
//! connector's map, and applies each update once, however often the back-end repeats it; an
//! HTML page instead of an update list is a failed run on the schedule's health, not a quiet
//! day.

use junction_connectors::xml;
use junction_domain::CaseStatus;
use junction_server::sim::Behaviour;
use junction_store::schedules;

use super::Rig;
use crate::support::eventually;

const UPDATES: &str = r#"
  [connectors.updates]
  poll_every_mins = 15
  window_mins = 120
  [[connectors.updates.statuses.rules]]
  status = "in_progress"
  to = "investigating"
"#;

const POLL: &str = "poll_updates:backend";

async fn polled(rig: &Rig) -> schedules::Schedule {
    let asked = chrono::Utc::now();
    schedules::run_now(
        rig.server.store(),
        &junction_domain::Actor::internal("test"),
        POLL,
    )
    .await
    .unwrap();
    ran_since(rig, asked).await
}

/// The poll schedule once a run started at or after `asked` has finished.
async fn ran_since(rig: &Rig, asked: chrono::DateTime<chrono::Utc>) -> schedules::Schedule {
    eventually(30, "the poll to run", || async {
        let s = schedules::get(rig.server.store(), POLL)
            .await
            .unwrap()
            .unwrap();
        let done = s.last_started_at.is_some_and(|t| t >= asked)
            && s.last_finished_at >= s.last_started_at
            && s.running_since.is_none();
        done.then_some(s)
    })
    .await
}

#[tokio::test]
async fn polled_updates_move_cases_once_through_the_connectors_status_map() {
    let behaviour = Behaviour {
        progress_after_secs: Some(0),
        fixed_after_secs: Some(1),
        duplicate_updates: true,
        ..Behaviour::default()
    };
    let rig = Rig::build(None, behaviour, 5, "", false, UPDATES).await;
    let reference = rig.report(5, 7001).await;
    rig.settled(&reference, 20).await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;

    let first = polled(&rig).await;
    assert_eq!(first.last_outcome.as_deref(), Some("ok"), "{first:?}");
    let counts = first.last_counts.clone().unwrap();
    assert_eq!(counts["applied"], 2, "{counts}");
    assert_eq!(
        counts["repeats"], 2,
        "each update was listed twice: {counts}"
    );
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Fixed);
    let from_backend: Vec<_> = junction_store::updates::for_case(rig.server.store(), &case.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|u| u.source == "connector:backend")
        .collect();
    let asked: Vec<_> = from_backend.iter().map(|u| u.status).collect();
    assert_eq!(
        asked,
        [Some(CaseStatus::Investigating), Some(CaseStatus::Fixed)],
        "in_progress means investigating here, by the connector's map"
    );

    // The next window overlaps this one: the same updates again change nothing.
    let second = polled(&rig).await;
    assert_eq!(second.last_counts.unwrap()["repeats"], 4);
    let again = junction_store::updates::for_case(rig.server.store(), &case.id)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .filter(|u| u.source == "connector:backend")
            .count(),
        2
    );
    assert!(second.next_run_at > chrono::Utc::now() + chrono::Duration::minutes(10));
}

#[tokio::test]
async fn an_html_page_for_updates_is_a_failed_run_with_its_reason() {
    let behaviour = Behaviour {
        progress_after_secs: Some(0),
        updates_html: true,
        ..Behaviour::default()
    };
    let rig = Rig::build(None, behaviour, 5, "", false, UPDATES).await;
    let reference = rig.report(5, 7002).await;
    rig.settled(&reference, 20).await;
    let run = polled(&rig).await;
    assert_eq!(run.last_outcome.as_deref(), Some("failed"));
    let why = run.last_error.unwrap();
    assert!(why.contains("not an update list (<html>)"), "{why}");
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Open, "nothing applied");

    // The back-end recovers: the next run reads what the failed one could not.
    rig.sim.set_behaviour(Behaviour {
        progress_after_secs: Some(0),
        ..Behaviour::default()
    });
    let next = polled(&rig).await;
    assert_eq!(next.last_outcome.as_deref(), Some("ok"));
    assert_eq!(next.last_error, None);
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);
}

#[tokio::test]
async fn managers_see_each_schedules_health_and_run_it_now_officers_cannot() {
    use junction_domain::Role;
    use serde_json::json;

    let behaviour = Behaviour {
        progress_after_secs: Some(0),
        ..Behaviour::default()
    };
    let rig = Rig::build(None, behaviour, 5, "", false, UPDATES).await;
    let reference = rig.report(5, 7003).await;
    rig.settled(&reference, 20).await;

    let officer = rig.server.token(&[Role::Officer]);
    let run = "mutation($n: String!) { runSchedule(name: $n) { name nextRunAt } }";
    let (_, body) = rig
        .server
        .gql(Some(&officer), run, json!({"n": POLL}))
        .await;
    assert_eq!(crate::support::code(&body), Some("FORBIDDEN"));

    let manager = rig.server.token(&[Role::Manager]);
    let (_, body) = rig
        .server
        .gql(Some(&manager), run, json!({"n": "poll_updates:nowhere"}))
        .await;
    assert_eq!(crate::support::code(&body), Some("NOT_FOUND"));
    let asked = chrono::Utc::now();
    let (_, body) = rig
        .server
        .gql(Some(&manager), run, json!({"n": POLL}))
        .await;
    assert_eq!(crate::support::data(&body)["runSchedule"]["name"], POLL);
    ran_since(&rig, asked).await;
    let health = "{ schedules { name kind connectorId everySeconds lastOutcome lastCounts lastError nextRunAt } }";
    let (_, body) = rig.server.gql(Some(&manager), health, json!({})).await;
    let listed = crate::support::data(&body)["schedules"].clone();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["mop_up_updates:backend", POLL]);
    let poll = &listed[1];
    assert_eq!(poll["everySeconds"], 900);
    assert_eq!(poll["connectorId"], "backend");
    assert_eq!(poll["lastCounts"]["applied"], 1);
    assert_eq!(poll["lastError"], serde_json::Value::Null);

    // Asking again is audited with who asked.
    let filter = junction_store::audit::AuditFilter {
        object_type: Some("schedule".into()),
        object_id: Some(POLL.into()),
        ..Default::default()
    };
    let (trail, _) = junction_store::audit::list(rig.server.store(), &filter, 10, None)
        .await
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|r| r.entry.change.as_ref().unwrap().action == "run_now"),
        "run now is audited"
    );
}

#[tokio::test]
async fn a_back_end_pushes_its_updates_with_its_own_key_and_nothing_else() {
    let rig = Rig::build(None, Behaviour::default(), 5, "", false, UPDATES).await;
    let reference = rig.report(5, 7004).await;
    let delivered = rig.settled(&reference, 20).await;
    let theirs = delivered
        .external_ref
        .clone()
        .expect("the back-end's reference");
    let (_, backend_key) = junction_store::api_keys::create_for_connector(
        rig.server.store(),
        &junction_domain::Actor::internal("test"),
        "council-backend",
        "backend",
    )
    .await
    .unwrap();
    let push = |key: String, form: Vec<(&'static str, String)>| {
        let client = rig.server.client.clone();
        let url = format!("{}/open311/v2/servicerequestupdates.xml", rig.server.base);
        async move {
            let mut form = form;
            form.push(("api_key", key));
            let resp = client.post(url).form(&form).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let update = |id: &str, reference: &str, status: &str, at: &str| {
        vec![
            ("update_id", id.to_string()),
            ("service_request_id", reference.to_string()),
            ("status", status.to_string()),
            ("updated_datetime", at.to_string()),
            ("description", "Inspected on site".to_string()),
        ]
    };
    let now = chrono::Utc::now();
    let at = |mins: i64| {
        (now + chrono::Duration::minutes(mins))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };

    // The back-end's word, through the connector's map: IN_PROGRESS means investigating here.
    let (status, body) = push(
        backend_key.clone(),
        update("B1", &theirs, "IN_PROGRESS", &at(1)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let first_id = xml::parse(&body)
        .unwrap()
        .child("request_update")
        .unwrap()
        .text_of("update_id")
        .unwrap()
        .to_string();
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);

    // Sent again (the back-end lost the answer): the same id, nothing new.
    let (status, body) = push(
        backend_key.clone(),
        update("B1", &theirs, "IN_PROGRESS", &at(1)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("<update_id>{first_id}</update_id>")),
        "{body}"
    );
    let from_backend = |u: &junction_domain::CaseUpdate| u.source == "connector:backend";
    let kept = junction_store::updates::for_case(rig.server.store(), &case.id)
        .await
        .unwrap();
    assert_eq!(kept.iter().filter(|u| from_backend(u)).count(), 1);

    // An older update arriving late is kept but moves nothing.
    let (status, _) = push(backend_key.clone(), update("B0", &theirs, "open", &at(-30))).await;
    assert_eq!(status, 200);
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);

    // A reference not known yet: accepted and held.
    let (status, body) = push(
        backend_key.clone(),
        update("B9", "NOT-YET-1", "fixed", &at(2)),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        junction_store::inbound::held_for(rig.server.store(), "backend")
            .await
            .unwrap()
            .len(),
        1
    );

    // Missing and unreadable arguments are named, in Open311's error list.
    let (status, body) = push(
        backend_key.clone(),
        vec![
            ("service_request_id", theirs.clone()),
            ("updated_datetime", "yesterday".into()),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("update_id: is required") && body.contains("updated_datetime: `yesterday`"),
        "{body}"
    );

    // A back-end's key does nothing a front-end does.
    let resp = rig
        .server
        .client
        .post(format!("{}/open311/v2/requests.xml", rig.server.base))
        .form(&[
            ("api_key", backend_key.as_str()),
            ("service_code", "POT"),
            ("description", "x"),
            ("lat", "50.71"),
            ("long", "-2.44"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("belongs to the back-end of connector `backend`")
    );

    // A front-end's key on the same path is a citizen's comment: the status stays.
    let (status, body) = push(rig.key.clone(), update("F1", &reference, "FIXED", &at(3))).await;
    assert_eq!(status, 200, "{body}");
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);
}
