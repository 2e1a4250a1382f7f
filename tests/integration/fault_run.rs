//! A fault run: cases through a back-end that refuses each case's first POST, hangs after
//! storing every 5th request and ignores lookup filters, with the real `junction` binary
//! killed with SIGKILL during the run and restarted. At the end, what the back-end holds is
//! compared with what Junction recorded, case by case.
//!
//! Shared by the integration suite (which asserts) and `cargo bench -p junction-tests --bench
//! faults` (which reports).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use futures::StreamExt;
use junction_server::sim::{Behaviour, Simulator};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::support::{CATALOGUE, eventually, init, junction_bin};

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

/// Starts Junction; its log goes to `junction.log` in `dir`, read back if it does not start.
fn spawn(dir: &std::path::Path, config: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("junction.log"))
        .unwrap();
    Command::new(junction_bin())
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .env_remove("JUNCTION_DATABASE_URL")
        .env("JUNCTION_LOG", "warn")
        .env("JUNCTION_TEST_BACKEND_KEY", "fault-run-key")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("junction starts")
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

async fn live(base: &str, dir: &std::path::Path) {
    let ready = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let ok = reqwest::get(format!("{base}/health/ready"))
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    if ready.is_err() {
        let log = std::fs::read_to_string(dir.join("junction.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        panic!(
            "junction was not ready within 60 s; its log ends:\n{}",
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
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
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let database_url = run
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("junction.db").display()));
    let proof = if run.dedupe {
        "dedupes_on_id = true"
    } else {
        "lookup_by_id = true"
    };
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
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
"#,
            data = dir.path().display()
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), &config);
    live(&base, dir.path()).await;
    let out = Command::new(junction_bin())
        .args(["token", "--role", "admin", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env("JUNCTION_TEST_BACKEND_KEY", "fault-run-key")
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
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
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        child = spawn(dir.path(), &config);
        live(&base, dir.path()).await;
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
    child.kill().unwrap();
    child.wait().unwrap();

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
