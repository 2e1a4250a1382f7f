//! A fault run: cases through a back-end that refuses each case's first POST, hangs after
//! storing every 5th request and ignores lookup filters, with the real `junction` binary
//! killed with SIGKILL during the run and restarted. At the end, what the back-end holds is
//! compared with what Junction recorded, case by case.
//!
//! Shared by the integration suite (which asserts) and `cargo bench -p junction-tests --bench
//! faults` (which reports).

use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_server::sim::{Behaviour, Simulator};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::process::Junction;
use crate::support::{CATALOGUE, eventually, init};

/// What to run.
#[derive(Debug, Clone)]
pub struct FaultRun {
    pub cases: usize,
    /// PostgreSQL (a fresh database); SQLite in a temporary directory when `None`.
    pub database_url: Option<String>,
    /// The back-end keeps one request per case id, and the connector says so
    /// (`dedupes_on_id`); otherwise the connector proves outcomes by lookup.
    pub dedupe: bool,
    /// How many times Junction is killed mid-run.
    pub kills: usize,
}

/// What the run came to.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub cases: usize,
    /// Sent, held exactly once by the back-end, under the reference Junction recorded.
    pub delivered_once: usize,
    /// Parked for a person, each with a reason.
    pub parked: usize,
    /// Cases the back-end holds more than once.
    pub duplicates: usize,
    /// Recorded as sent, but the back-end holds nothing for them.
    pub sent_not_held: usize,
    /// Recorded as sent with a reference other than the one the back-end gave them.
    pub wrong_refs: usize,
    /// Neither sent nor parked when the run stopped waiting.
    pub unsettled: usize,
    /// Parked without a reason.
    pub parked_without_reason: usize,
    /// From the last restart to every delivery sent or parked.
    pub settle_secs: f64,
    /// From the first case to every delivery sent or parked.
    pub total_secs: f64,
    /// Attempts made over every delivery (claims, including checks of unknown outcomes).
    pub attempts: u64,
}

impl Report {
    /// Whether every guarantee held.
    pub fn holds(&self) -> bool {
        self.duplicates == 0
            && self.sent_not_held == 0
            && self.wrong_refs == 0
            && self.unsettled == 0
            && self.parked_without_reason == 0
            && self.delivered_once + self.parked == self.cases
    }
}

async fn gql(client: &reqwest::Client, base: &str, token: &str, query: &str, vars: Value) -> Value {
    client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Runs `run` and reports.
pub async fn fault_run(run: &FaultRun) -> Report {
    init();
    let sim = Simulator::new(Behaviour {
        fail_first_posts: 1,
        hang_every: 5,
        ignore_unknown_filters: true,
        dedupe: run.dedupe,
        delay_ms: 20,
        ..Behaviour::default()
    });
    let (sim_addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = run
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("junction.db").display()));
    let proof = if run.dedupe {
        "dedupes_on_id = true"
    } else {
        "lookup_by_id = true"
    };
    let data = dir.path().display().to_string();
    let mut junction = Junction::start(dir, |port| {
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[database]
url = "{database_url}"

[workers]
concurrency = 16

{CATALOGUE}

[[connectors]]
id = "backend"
kind = "open311"
retry = {{ initial_secs = 1, max_delay_secs = 2, max_age_hours = 1, checks = 3, jitter = 0.2 }}
  [connectors.params]
  endpoint = "http://{sim_addr}/open311/v2/"
  api_key = "${{JUNCTION_TEST_BACKEND_KEY}}"
  timeout_secs = 2
  {proof}

[[routes]]
name = "potholes to the back-end"
case_types = ["POT"]
set = {{ connector = "backend" }}
"#
        )
    })
    .await;
    let base = junction.base.clone();
    let token = junction
        .cli(&["token", "--role", "admin"])
        .trim()
        .to_string();
    let client = reqwest::Client::new();

    let started = Instant::now();
    let create = "mutation($i: CreateCaseInput!) { createCase(input: $i) { id } }";
    let mut intake = futures::stream::iter(0..run.cases)
        .map(|n| {
            let client = client.clone();
            let (base, token) = (base.clone(), token.clone());
            async move {
                let vars = json!({"i": {"caseType": "POT", "description": format!("hole {n}"),
                    "location": {"address": format!("{n} High St")}, "fields": {"depth_cm": 5}}});
                let body = gql(&client, &base, &token, create, vars).await;
                assert!(body["data"]["createCase"]["id"].is_string(), "{body}");
            }
        })
        .buffer_unordered(16);
    while intake.next().await.is_some() {}

    // Kill while the back-end is part-way through, each time further on.
    for k in 1..=run.kills {
        let mark = run.cases * k / (run.kills + 1);
        eventually(300, "the back-end to fill part-way", || async {
            (sim.requests().len() >= mark).then_some(())
        })
        .await;
        junction.kill_and_restart().await;
    }
    let restarted = Instant::now();
    let settled = async {
        loop {
            let h = gql(
                &client,
                &base,
                &token,
                "{ connectors { id health { sent needsDecision } } }",
                json!({}),
            )
            .await;
            let health = &h["data"]["connectors"][0]["health"];
            let done = health["sent"].as_u64().unwrap_or(0)
                + health["needsDecision"].as_u64().unwrap_or(0);
            if done as usize >= run.cases {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(600), settled).await;
    let settle_secs = restarted.elapsed().as_secs_f64();
    let total_secs = started.elapsed().as_secs_f64();
    junction.kill();

    let mut report = compare(&sim, &database_url, run.cases).await;
    report.settle_secs = settle_secs;
    report.total_secs = total_secs;
    report
}

/// Compares Junction's deliveries with what the back-end holds, case by case.
async fn compare(sim: &Simulator, database_url: &str, cases: usize) -> Report {
    let db = sea_orm::Database::connect(database_url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT case_id, state, external_ref, last_error, attempts FROM deliveries \
             WHERE kind = 'case'",
        ))
        .await
        .unwrap();
    let copies = sim.copies();
    let held: std::collections::BTreeMap<String, String> = sim
        .requests()
        .into_iter()
        .filter_map(|r| r.client_id.map(|id| (id, r.service_request_id)))
        .collect();
    let mut report = Report {
        cases,
        duplicates: copies.values().filter(|n| **n > 1).count(),
        ..Report::default()
    };
    for row in rows {
        let case_id: String = row.try_get("", "case_id").unwrap();
        let state: String = row.try_get("", "state").unwrap();
        let external: Option<String> = row.try_get("", "external_ref").unwrap();
        let error: Option<String> = row.try_get("", "last_error").unwrap();
        let attempts: i32 = row.try_get("", "attempts").unwrap();
        report.attempts += attempts.max(0) as u64;
        let n = copies.get(&case_id).copied().unwrap_or(0);
        match state.as_str() {
            "sent" if n == 0 => report.sent_not_held += 1,
            "sent" if external.as_ref() != held.get(&case_id) => report.wrong_refs += 1,
            "sent" if n == 1 => report.delivered_once += 1,
            "sent" => {}
            "needs_decision" => {
                report.parked += 1;
                if error.is_none_or(|e| e.trim().is_empty()) {
                    report.parked_without_reason += 1;
                }
            }
            _ => report.unsettled += 1,
        }
    }
    db.close().await.unwrap();
    report
}
