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

pub(super) const UPDATES: &str = r#"
  [connectors.updates]
  poll_every_mins = 15
  window_mins = 120
  [[connectors.updates.statuses.rules]]
  status = "in_progress"
  to = "investigating"
"#;

pub(super) const POLL: &str = "poll_updates:backend";

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
async fn the_front_end_reads_the_back_ends_updates_as_fixmystreet_expects() {
    let behaviour = Behaviour {
        progress_after_secs: Some(0),
        ..Behaviour::default()
    };
    let rig = Rig::build(None, behaviour, 5, "", false, UPDATES).await;
    let reference = rig.report(5, 7005).await;
    rig.settled(&reference, 20).await;
    let run = polled(&rig).await;
    assert_eq!(run.last_counts.unwrap()["applied"], 1);

    let start = (chrono::Utc::now() - chrono::Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let end = (chrono::Utc::now() + chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let read = || async {
        let resp = rig
            .server
            .client
            .get(format!(
                "{}/open311/v2/servicerequestupdates.xml",
                rig.server.base
            ))
            .query(&[
                ("api_key", rig.key.as_str()),
                ("jurisdiction_id", "borsetshire"),
                ("start_date", start.as_str()),
                ("end_date", end.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.text().await.unwrap()
    };
    let body = read().await;
    let root = xml::parse(&body).unwrap();
    let ours: Vec<&xml::Element> = root
        .children("request_update")
        .filter(|u| u.text_of("service_request_id") == Some(reference.as_str()))
        .filter(|u| u.text_of("description") == Some("Status is now in_progress"))
        .collect();
    assert_eq!(ours.len(), 1, "{body}");
    let u = ours[0];
    assert_eq!(
        u.text_of("status"),
        Some("investigating"),
        "lower-case extended status: {body}"
    );
    assert_eq!(
        u.text_of("fixmystreet_id"),
        Some("7005"),
        "the front-end's own id: {body}"
    );
    let when = u.text_of("updated_datetime").unwrap();
    assert!(
        when.ends_with('Z') && !when.contains('.'),
        "W3C, no fractions: {when}"
    );
    let id = u.text_of("update_id").unwrap().to_string();
    // Read again: the same update under the same id.
    let again = read().await;
    assert!(
        again.contains(&format!("<update_id>{id}</update_id>")),
        "{again}"
    );
}
