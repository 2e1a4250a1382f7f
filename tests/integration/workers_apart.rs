//! One API process and two worker processes on one PostgreSQL, as a council runs Junction at
//! scale: `junction serve --no-workers` takes cases in, two `junction worker`s deliver them and
//! run the update polls. Every case reaches the back-end once, and every poll (each due run,
//! and each "run now") reads the back-end's updates once, however the two workers race.

use std::time::Duration;

use junction_domain::CaseStatus;
use junction_server::sim::{Behaviour, Simulator};

use crate::process::{Junction, spawn};
use crate::support::{CATALOGUE, TestDb, eventually, init};

const CASES: usize = 30;

#[tokio::test]
async fn an_api_process_and_two_workers_deliver_each_case_and_run_each_poll_once() {
    init();
    let Some(db) = TestDb::postgres().await else {
        eprintln!("JUNCTION_TEST_DATABASE_URL is not set: several processes need PostgreSQL");
        return;
    };
    let sim = Simulator::new(Behaviour {
        progress_after_secs: Some(0),
        ..Behaviour::default()
    });
    let (sim_addr, _task) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let url = db.url.clone();
    let api = Junction::start_as(dir, &["serve", "--no-workers"], |port| {
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[database]
url = "{url}"

{CATALOGUE}

[[connectors]]
id = "backend"
kind = "open311"
  [connectors.params]
  endpoint = "http://{sim_addr}/open311/v2/"
  api_key = "${{JUNCTION_TEST_BACKEND_KEY}}"
  [connectors.updates]
  poll_every_mins = 60
  window_mins = 120

[[routes]]
name = "potholes to the back-end"
case_types = ["POT"]
set = {{ connector = "backend" }}
"#,
            data = data.display()
        )
    })
    .await;
    let key = api
        .cli(&["api-key", "create", "fixmystreet"])
        .trim()
        .to_string();
    let mut workers: Vec<_> = (0..2)
        .map(|_| spawn(api.dir.path(), &api.config, &["worker"]))
        .collect();

    let client = reqwest::Client::new();
    for n in 0..CASES {
        let resp = client
            .post(format!("{}/open311/v2/requests.xml", api.base))
            .form(&[
                ("api_key", key.as_str()),
                ("service_code", "POT"),
                ("description", &format!("hole {n}")),
                ("lat", "50.71"),
                ("long", "-2.44"),
                ("attribute[depth_cm]", "5"),
                ("attribute[road_type]", "carriageway"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
    eventually(60, "every case to reach the back-end", || async {
        (sim.requests().len() >= CASES).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sim.requests().len(), CASES, "nothing sent twice");
    assert!(sim.copies().values().all(|&n| n == 1));

    // At start each worker declared the schedules, and the poll and its mop-up each ran once.
    let store = junction_store::Store::connect(&db.url).await.unwrap();
    eventually(30, "the first poll and mop-up", || async {
        let all = junction_store::schedules::list(&store).await.unwrap();
        (all.len() == 2 && all.iter().all(|s| s.last_finished_at.is_some())).then_some(())
    })
    .await;
    let reads_at_start = sim.update_reads();
    assert_eq!(
        reads_at_start, 2,
        "one poll and one mop-up, not one each per worker"
    );

    // Each "run now" is one poll, whichever worker takes it.
    let actor = junction_domain::Actor::internal("test");
    for round in 1..=3u64 {
        let asked = chrono::Utc::now();
        junction_store::schedules::run_now(&store, &actor, "poll_updates:backend")
            .await
            .unwrap();
        eventually(30, "the poll to run", || async {
            let s = junction_store::schedules::get(&store, "poll_updates:backend")
                .await
                .unwrap()
                .unwrap();
            (s.last_started_at.is_some_and(|t| t >= asked)
                && s.last_finished_at >= s.last_started_at
                && s.running_since.is_none())
            .then_some(())
        })
        .await;
        // Both workers check every few seconds: give the loser time to run it wrongly.
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(sim.update_reads(), reads_at_start + round);
    }
    // The updates the polls read moved every case, once.
    let filter = junction_store::cases::CaseFilter::default();
    let cases = junction_store::cases::list(&store, &filter, 100, None)
        .await
        .unwrap()
        .cases;
    assert_eq!(cases.len(), CASES);
    assert!(cases.iter().all(|c| c.status == CaseStatus::InProgress));
    for c in &cases {
        let updates = junction_store::updates::for_case(&store, &c.id)
            .await
            .unwrap();
        assert_eq!(
            updates
                .iter()
                .filter(|u| u.source == "connector:backend")
                .count(),
            1
        );
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
    store.close().await.unwrap();
    drop(api);
}
