//! The load-and-faults run: the real `junction` binary under a steady mixed load (Open311
//! intake as FixMyStreet sends it, GraphQL reads, partner subscriptions) while the back-end
//! fails for a while and recovers, and Junction is killed with SIGKILL and restarted. It
//! reports what was served, the errors, a bystander's latency, and, once everything settles,
//! whether every accepted case reached the back-end once (or was parked with a reason), the
//! subscribers heard each event once, and the audit chain verifies.
//!
//! Shared by `cargo bench -p junction-tests --bench load_faults` and a short run in the suite.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use junction_server::sim::{Behaviour, Simulator};
use sea_orm::ConnectionTrait;
use tokio::sync::Mutex;

use crate::process::Junction;
use crate::support::{CATALOGUE, init};

#[path = "load_clients.rs"]
mod clients;
use clients::{bystander, gql, intake, reader, subscriber};

/// What to run.
pub struct LoadRun {
    /// How long the load runs.
    pub secs: u64,
    /// `None`: SQLite in the run's directory.
    pub database_url: Option<String>,
    /// Open311 reports a second, over all intake clients.
    pub reports_per_sec: u64,
    /// GraphQL readers, each reading as fast as it is answered with a pause of 50 ms.
    pub readers: usize,
    /// Partner subscriptions.
    pub subscribers: usize,
}

/// What happened.
#[derive(Debug, Default)]
pub struct LoadReport {
    pub reports_sent: u64,
    pub reports_accepted: u64,
    pub report_errors: u64,
    pub reads: u64,
    pub read_errors: u64,
    pub bystander_checks: u64,
    pub bystander_errors: u64,
    pub bystander_p50_ms: f64,
    pub bystander_p99_ms: f64,
    pub delivered_once: u64,
    pub parked: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub events_heard: u64,
    pub events_twice: u64,
    pub audit_verified: bool,
    pub settle_secs: f64,
}

impl LoadReport {
    /// Nothing lost, nothing twice, the chain whole.
    pub fn holds(&self) -> bool {
        self.lost == 0
            && self.duplicates == 0
            && self.events_twice == 0
            && self.audit_verified
            && self.reports_accepted == self.reports_sent
            && self.delivered_once + self.parked == self.reports_accepted
    }
}

const SHARING: &str = r#"
[sharing]
purposes = ["crime_prevention"]

[[sharing.rules]]
name = "every pothole to the police"
agreement = "police-roads"

[[agreements]]
id = "police-roads"
title = "Road safety"
partner = "police"
case_types = ["POT"]
purposes = ["crime_prevention"]
lawful_basis = "Crime and Disorder Act 1998 s115"
ceiling = "official"
valid_from = 2020-01-01
"#;

/// Runs `run` and reports.
pub async fn load_run(run: &LoadRun) -> LoadReport {
    init();
    let sim = Simulator::new(Behaviour {
        delay_ms: 10,
        ..Behaviour::default()
    });
    let (sim_addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let database_url = run
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("junction.db").display()));
    let data = dir.path().display().to_string();
    let mut junction = Junction::start(dir, |port| {
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[database]
url = "{database_url}"

{CATALOGUE}

[[connectors]]
id = "backend"
kind = "open311"
retry = {{ initial_secs = 1, max_delay_secs = 2, max_age_hours = 1, checks = 3, jitter = 0.2 }}
  [connectors.params]
  endpoint = "http://{sim_addr}/open311/v2/"
  api_key = "${{JUNCTION_TEST_BACKEND_KEY}}"
  timeout_secs = 2
  lookup_by_id = true

[[routes]]
name = "potholes to the back-end"
case_types = ["POT"]
set = {{ connector = "backend" }}
{SHARING}"#
        )
    })
    .await;
    let admin = junction
        .cli(&["token", "--role", "admin"])
        .trim()
        .to_string();
    let partner = junction
        .cli(&[
            "token",
            "--role",
            "partner",
            "--agency",
            "police",
            "--subject",
            "pc",
        ])
        .trim()
        .to_string();
    let api_key = junction
        .cli(&["api-key", "create", "fixmystreet"])
        .split_whitespace()
        .find(|w| w.starts_with("jk_"))
        .expect("an api key")
        .to_string();

    let stop = Arc::new(AtomicBool::new(false));
    let report = Arc::new(Mutex::new(LoadReport::default()));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    // Per subscriber: events heard, and how many of them it had heard before.
    let heard = Arc::new(Mutex::new((0u64, 0u64)));
    let base = junction.base.clone();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(intake(
        base.clone(),
        api_key,
        run.reports_per_sec,
        stop.clone(),
        report.clone(),
    )));
    for _ in 0..run.readers {
        tasks.push(tokio::spawn(reader(
            base.clone(),
            admin.clone(),
            stop.clone(),
            report.clone(),
        )));
    }
    for _ in 0..run.subscribers {
        tasks.push(tokio::spawn(subscriber(
            base.clone(),
            partner.clone(),
            stop.clone(),
            heard.clone(),
        )));
    }
    tasks.push(tokio::spawn(bystander(
        base.clone(),
        stop.clone(),
        report.clone(),
        latencies.clone(),
    )));

    // A quarter in, the back-end refuses everything for a fifth of the run, then recovers;
    // half-way, Junction is killed and restarted.
    let quarter = Duration::from_secs(run.secs) / 4;
    tokio::time::sleep(quarter).await;
    sim.set_behaviour(Behaviour {
        delay_ms: 10,
        fail_rate: 1.0,
        ..Behaviour::default()
    });
    tokio::time::sleep(Duration::from_secs(run.secs) / 5).await;
    sim.set_behaviour(Behaviour {
        delay_ms: 10,
        ..Behaviour::default()
    });
    tokio::time::sleep(
        Duration::from_secs(run.secs) / 2 - quarter - Duration::from_secs(run.secs) / 5,
    )
    .await;
    junction.kill_and_restart().await;
    tokio::time::sleep(Duration::from_secs(run.secs) / 2).await;
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        let _ = tokio::time::timeout(Duration::from_secs(30), t).await;
    }

    // Settle: every accepted case sent or parked.
    let accepted = report.lock().await.reports_accepted;
    let restarted = Instant::now();
    let client = reqwest::Client::new();
    let _ = tokio::time::timeout(Duration::from_secs(300), async {
        loop {
            let h = gql(
                &client,
                &base,
                &admin,
                "{ connectors { health { sent needsDecision } } }",
            )
            .await;
            let health = &h["data"]["connectors"][0]["health"];
            let done = health["sent"].as_u64().unwrap_or(0)
                + health["needsDecision"].as_u64().unwrap_or(0);
            if done >= accepted {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let settle_secs = restarted.elapsed().as_secs_f64();
    junction.kill();

    let mut report = std::mem::take(&mut *report.lock().await);
    report.settle_secs = settle_secs;
    let mut l = latencies.lock().await.clone();
    l.sort_by(f64::total_cmp);
    let at = |q: f64| {
        l.get(((l.len() as f64 * q) as usize).min(l.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    };
    report.bystander_p50_ms = at(0.50);
    report.bystander_p99_ms = at(0.99);
    let (events, twice) = *heard.lock().await;
    report.events_heard = events;
    report.events_twice = twice;
    compare(&sim, &database_url, &mut report).await;
    report.audit_verified = junction.cli_succeeds(&["audit", "verify"]);
    report
}

/// Compares Junction's deliveries with what the back-end holds.
async fn compare(sim: &Simulator, database_url: &str, report: &mut LoadReport) {
    let db = sea_orm::Database::connect(database_url).await.unwrap();
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            backend,
            "SELECT case_id, state FROM deliveries WHERE kind = 'case'",
        ))
        .await
        .unwrap();
    let copies = sim.copies();
    report.duplicates = copies.values().filter(|n| **n > 1).count() as u64;
    for row in rows {
        let case_id: String = row.try_get("", "case_id").unwrap();
        let state: String = row.try_get("", "state").unwrap();
        match (state.as_str(), copies.get(&case_id).copied().unwrap_or(0)) {
            ("sent", 1) => report.delivered_once += 1,
            ("needs_decision", _) => report.parked += 1,
            // Held more than once: counted among the duplicates.
            ("sent", n) if n > 1 => {}
            // Marked sent but never held, or never settled.
            _ => report.lost += 1,
        }
    }
    db.close().await.unwrap();
}
