//! Partner subscription benchmark (issue 4): 1,000 partners subscribed over
//! `graphql-transport-ws` to a `junction serve` process.
//!
//! 1. Memory: the server's resident set before and after 1,000 idle subscriptions.
//! 2. Latency: notes added to shared cases at a steady 100/s for 20 s; for every subscriber and
//!    every note, the time from the event's own timestamp (taken inside the committing
//!    transaction, so at or before the commit) to its arrival, and, for comparison, from the
//!    moment the client sent the mutation (which adds the API's own latency).
//! 3. Throughput: 2,000 notes as fast as the API takes them; events delivered per second
//!    across all subscribers.
//!
//! `cargo bench -p junction-server --bench subscriptions` (SQLite); with
//! `JUNCTION_TEST_DATABASE_URL=postgres://…` on a fresh PostgreSQL database instead.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const SUBSCRIBERS: usize = 1_000;
const RATE: u64 = 100;
const SECS: u64 = 20;
const BURST: usize = 2_000;
const CASES: usize = 50;

const CONFIG: &str = r#"
[[jurisdictions]]
id = "borsetshire"
name = "Borsetshire Council"

[[agencies]]
id = "eh"
name = "Environmental Health"
kind = "department"

[[agencies]]
id = "police"
name = "Police"
kind = "partner"

[[case_types]]
code = "FOOD"
name = "Food complaint"
agency = "eh"
published = true
  [[case_types.fields]]
  code = "risk"
  description = "Risk"
  datatype = "string"
  classification = "official"

[workers]
enabled = false

[telemetry]
log_level = "error"

[sharing]
purposes = ["crime_prevention"]

[[sharing.rules]]
name = "all food to the police"
agreement = "police-food"

[[agreements]]
id = "police-food"
title = "Food crime"
partner = "police"
case_types = ["FOOD"]
purposes = ["crime_prevention"]
lawful_basis = "Crime and Disorder Act 1998 s115"
ceiling = "official"
valid_from = 2020-01-01
"#;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn token(
    dir: &std::path::Path,
    config: &std::path::Path,
    role: &str,
    agency: Option<&str>,
) -> String {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_junction"));
    cmd.args(["token", "--role", role, "--ttl", "2h", "--config"])
        .arg(config)
        .current_dir(dir);
    if let Some(a) = agency {
        cmd.args(["--agency", a]);
    }
    let out = cmd.output().expect("junction token");
    String::from_utf8(out.stdout).unwrap().trim().to_string()
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

#[tokio::main]
async fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (url, backend) = match std::env::var("JUNCTION_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let name = format!("junction_bench_{}", std::process::id());
            let admin = sqlx::PgPool::connect(&base).await.unwrap();
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(&admin)
                .await
                .unwrap();
            let (head, _) = base.rsplit_once('/').unwrap();
            (format!("{head}/{name}"), "postgres")
        }
        _ => (
            format!("sqlite://{}", dir.path().join("junction.db").display()),
            "sqlite",
        ),
    };
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[database]\nurl = \"{url}\"\n{CONFIG}",
            dir.path().display()
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_junction"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .env_remove("JUNCTION_DATABASE_URL")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let _server = Server(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..600 {
        if reqwest::get(format!("{base}/health/ready"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let officer = token(dir.path(), &config, "officer", None);
    let police = token(dir.path(), &config, "partner", Some("police"));
    let mut cases = Vec::new();
    for i in 0..CASES {
        let body = gql(&client, &base, &officer,
            "mutation($i: CreateCaseInput!) { createCase(input: $i) { id } }",
            json!({"i": {"caseType": "FOOD", "description": format!("case {i}"), "location": {"address": "1 High St"}, "fields": {"risk": "high"}}})).await;
        cases.push(
            body["data"]["createCase"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }

    // 1. Memory per idle subscription.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kib(pid);
    let hist = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let hist_commit = Arc::new(Mutex::new(Histogram::<u64>::new(3).unwrap()));
    let received = Arc::new(AtomicU64::new(0));
    let started = Arc::new(Instant::now());
    let mut tasks = Vec::new();
    let ws_url = format!("ws://127.0.0.1:{port}/graphql");
    let (report_tx, report_rx) = tokio::sync::watch::channel(0u32);
    for _ in 0..SUBSCRIBERS {
        let mut request = ws_url.clone().into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        ws.send(Message::text(json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {police}"), "purpose": "crime_prevention"}}).to_string())).await.unwrap();
        let _ack = ws.next().await;
        ws.send(Message::text(json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { sharedCaseEvents { id kind at data } }"}}).to_string())).await.unwrap();
        let hist = hist.clone();
        let hist_commit = hist_commit.clone();
        let received = received.clone();
        let started = started.clone();
        let mut report = report_rx.clone();
        tasks.push(tokio::spawn(async move {
            // Each client keeps its own histogram and hands it over when asked, so measuring
            // adds no shared lock per message.
            let mut local = Histogram::<u64>::new(3).unwrap();
            let mut local_commit = Histogram::<u64>::new(3).unwrap();
            loop {
                tokio::select! {
                    msg = ws.next() => {
                        let Some(Ok(msg)) = msg else { break };
                        let Message::Text(t) = msg else { continue };
                        // Notes carry their send time in microseconds since the run started.
                        if let Some(at) = t
                            .split("sent-at-")
                            .nth(1)
                            .and_then(|r| r.split('"').next())
                            .and_then(|v| v.parse::<u64>().ok())
                        {
                            let now = started.elapsed().as_micros() as u64;
                            received.fetch_add(1, Ordering::Relaxed);
                            if at != u64::MAX {
                                let _ = local.record(now.saturating_sub(at));
                                let committed = t
                                    .split("\"at\":\"")
                                    .nth(1)
                                    .and_then(|r| r.split('"').next())
                                    .and_then(|v| chrono::DateTime::parse_from_rfc3339(v).ok());
                                if let Some(committed) = committed {
                                    let waited = chrono::Utc::now().signed_duration_since(committed);
                                    let _ = local_commit
                                        .record(waited.num_microseconds().unwrap_or(0).max(0) as u64);
                                }
                            }
                        }
                    }
                    changed = report.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        hist.lock().await.add(&local).unwrap();
                        hist_commit.lock().await.add(&local_commit).unwrap();
                        local.reset();
                        local_commit.reset();
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kib(pid);
    println!(
        "[{backend}] memory: server RSS {before} KiB idle, {after} KiB with {SUBSCRIBERS} subscriptions: {:.1} KiB per idle subscription",
        (after.saturating_sub(before)) as f64 / SUBSCRIBERS as f64
    );

    // 2. Latency at a steady rate.
    let note = "mutation($id: ID!, $n: String!) { addCaseNote(id: $id, note: $n) { id } }";
    let interval = Duration::from_micros(1_000_000 / RATE);
    let mut tick = tokio::time::interval(interval);
    let mut senders = Vec::new();
    for i in 0..(RATE * SECS) as usize {
        tick.tick().await;
        let (client, base, officer, id) = (
            client.clone(),
            base.clone(),
            officer.clone(),
            cases[i % CASES].clone(),
        );
        let at = started.elapsed().as_micros() as u64;
        senders.push(tokio::spawn(async move {
            gql(
                &client,
                &base,
                &officer,
                note,
                json!({"id": id, "n": format!("sent-at-{at}")}),
            )
            .await;
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let expected = (RATE * SECS) * SUBSCRIBERS as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Collect every client's histogram.
    report_tx.send(1).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    {
        let h = hist.lock().await;
        let c = hist_commit.lock().await;
        println!(
            "[{backend}] latency at {RATE} events/s to {SUBSCRIBERS} subscribers: {} of {expected} received; from the event's commit: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (target p99 <= 100 ms); from sending the mutation: p50 {:.1} ms, p99 {:.1} ms",
            received.load(Ordering::Relaxed),
            c.value_at_quantile(0.5) as f64 / 1000.0,
            c.value_at_quantile(0.99) as f64 / 1000.0,
            c.max() as f64 / 1000.0,
            h.value_at_quantile(0.5) as f64 / 1000.0,
            h.value_at_quantile(0.99) as f64 / 1000.0,
        );
    }

    // 3. Throughput: a burst, as fast as the API takes notes.
    let before_burst = received.load(Ordering::Relaxed);
    let burst_start = Instant::now();
    let mut senders = Vec::new();
    for chunk in (0..BURST).collect::<Vec<_>>().chunks(BURST / 16) {
        let (client, base, officer, cases) =
            (client.clone(), base.clone(), officer.clone(), cases.clone());
        let chunk = chunk.to_vec();
        senders.push(tokio::spawn(async move {
            for i in chunk {
                gql(
                    &client,
                    &base,
                    &officer,
                    note,
                    json!({"id": cases[i % CASES], "n": format!("sent-at-{}", u64::MAX)}),
                )
                .await;
            }
        }));
    }
    for s in senders {
        let _ = s.await;
    }
    let want = before_burst + (BURST * SUBSCRIBERS) as u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received.load(Ordering::Relaxed) < want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let got = received.load(Ordering::Relaxed) - before_burst;
    let secs = burst_start.elapsed().as_secs_f64();
    println!(
        "[{backend}] throughput: {BURST} notes to {SUBSCRIBERS} subscribers: {got} events delivered in {secs:.1} s = {:.0} events/s ({:.0} notes/s)",
        got as f64 / secs,
        BURST as f64 / secs
    );
    for t in tasks {
        t.abort();
    }
}
