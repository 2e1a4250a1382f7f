//! Delivery benchmark (issue 3, scenario S2): cases posted to Junction's Open311 intake and
//! delivered to the local Open311 simulator.
//!
//! 1. Burn-down: 10,000 cases are taken in from 16 concurrent clients (each POST timed: intake
//!    p50 and p99) while the connector is paused, then it is resumed and the time until every
//!    delivery is recorded as sent gives deliveries/s.
//! 2. Queue alone: the same burn-down to a connector that accepts at once without any network,
//!    which measures the queue, claims and settlement (Junction's own cost).
//! 3. Latency: cases posted at a steady 100/s for 20 s; intake-to-delivered time of each, from
//!    the moment the POST was sent to the moment its delivery was committed as sent.
//!
//! `cargo bench -p junction-server --bench delivery` (SQLite); with
//! `JUNCTION_TEST_DATABASE_URL=postgres://…` PostgreSQL too.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use junction_connectors::{Accepted, Deliver, Outbound, Refused};
use junction_domain::Actor;
use junction_server::sim::{Behaviour, Simulator};
use junction_store::deliveries::{self, PauseTarget};
use junction_store::{Store, api_keys};

const BURN: usize = 10_000;
const STEADY_RATE: u64 = 100;
/// Concurrent clients posting during the burn-down's intake.
const INTAKE_CLIENTS: usize = 16;
const STEADY_SECS: u64 = 20;

const CATALOGUE: &str = r#"
[[jurisdictions]]
id = "borsetshire"
name = "Borsetshire Council"

[[agencies]]
id = "highways"
name = "Highways"
kind = "department"
connector = "backend"

[[case_types]]
code = "POT"
name = "Pothole"
agency = "highways"
published = true
  [[case_types.fields]]
  code = "depth_cm"
  description = "Depth"
  datatype = "number"
  required = true
  classification = "public"
"#;

/// Accepts at once: the queue measured without any network.
struct Instant311;

#[async_trait::async_trait]
impl junction_connectors::Connector for Instant311 {
    fn kind(&self) -> junction_connectors::ConnectorKind {
        junction_connectors::ConnectorKind::Open311
    }

    fn target(&self) -> String {
        "nowhere".into()
    }

    async fn health_check(&self) -> junction_connectors::Health {
        junction_connectors::Health::Healthy("in process".into())
    }
}

#[async_trait::async_trait]
impl Deliver for Instant311 {
    async fn deliver(&self, _out: &Outbound<'_>) -> Result<Accepted, Refused> {
        Ok(Accepted {
            external_ref: Some("X".into()),
            response: None,
            notes: Vec::new(),
        })
    }
}

struct Bench {
    server: junction_server::RunningServer,
    base: String,
    key: String,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(url: &str, sim_addr: std::net::SocketAddr) -> Bench {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junction.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[database]\nurl = \"{url}\"\n\n[telemetry]\nlog_level = \"error\"\n{CATALOGUE}\n\
             [[connectors]]\nid = \"backend\"\nkind = \"open311\"\n  [connectors.params]\n  endpoint = \"http://{sim_addr}/open311/v2/\"\n  api_key = \"${{JUNCTION_TEST_BACKEND_KEY}}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let loaded = junction_server::config::load(&path).unwrap();
    let server = junction_server::start(loaded).await.unwrap();
    let (_, key) = api_keys::create(&server.store, &Actor::internal("bench"), "bench", None)
        .await
        .unwrap();
    Bench {
        base: format!("http://{}", server.addr),
        server,
        key,
        client: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .unwrap(),
        _dir: dir,
    }
}

impl Bench {
    async fn post(&self, n: usize) -> String {
        let body = format!(
            "api_key={}&service_code=POT&description=hole+{n}&lat=50.71&long=-2.44&attribute%5Bdepth_cm%5D=5",
            self.key
        );
        let resp = self
            .client
            .post(format!("{}/open311/v2/requests.xml", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let text = resp.text().await.unwrap();
        let start = text.find("<service_request_id>").unwrap() + "<service_request_id>".len();
        text[start..start + text[start..].find('<').unwrap()].to_string()
    }

    fn store(&self) -> &Store {
        &self.server.store
    }

    async fn sent(&self) -> u64 {
        deliveries::count(
            self.store(),
            "backend",
            junction_domain::DeliveryState::Sent,
        )
        .await
        .unwrap()
    }
}

async fn burn_down(bench: &Bench, label: &str) -> f64 {
    let actor = Actor::internal("bench");
    deliveries::pause(
        bench.store(),
        &actor,
        PauseTarget::Connector,
        "backend",
        "bench",
    )
    .await
    .unwrap();
    let before = bench.sent().await;
    let taken = Instant::now();
    use futures::StreamExt;
    // Sixteen clients posting as fast as they are answered, each POST timed.
    let latencies: Vec<Duration> = futures::stream::iter(0..BURN)
        .map(|n| async move {
            let sent = Instant::now();
            bench.post(n).await;
            sent.elapsed()
        })
        .buffer_unordered(INTAKE_CLIENTS)
        .collect()
        .await;
    let intake = taken.elapsed();
    let mut h = Histogram::<u64>::new(3).unwrap();
    for l in &latencies {
        h.record(l.as_micros().max(1) as u64).unwrap();
    }
    let started = Instant::now();
    deliveries::resume(bench.store(), &actor, PauseTarget::Connector, "backend")
        .await
        .unwrap();
    loop {
        if bench.sent().await >= before + BURN as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    let rate = BURN as f64 / secs;
    eprintln!(
        "  {label}: intake {BURN} cases in {:.1}s ({:.0}/s; {INTAKE_CLIENTS} clients, p50 {:.1} ms, p99 {:.1} ms); burn-down {secs:.1}s = {rate:.0} deliveries/s",
        intake.as_secs_f64(),
        BURN as f64 / intake.as_secs_f64(),
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
    );
    rate
}

async fn steady(bench: Arc<Bench>) -> (f64, f64, f64) {
    let mut posted: Vec<(String, chrono::DateTime<chrono::Utc>)> = Vec::new();
    let interval = Duration::from_micros(1_000_000 / STEADY_RATE);
    let mut tick = tokio::time::interval(interval);
    let total = (STEADY_RATE * STEADY_SECS) as usize;
    let mut tasks = Vec::with_capacity(total);
    for n in 0..total {
        tick.tick().await;
        let at = chrono::Utc::now();
        let b = bench.clone();
        tasks.push(tokio::spawn(async move { (b.post(n).await, at) }));
    }
    for t in tasks {
        posted.push(t.await.unwrap());
    }
    let mut h = Histogram::<u64>::new(3).unwrap();
    for (reference, at) in &posted {
        let sent_at = loop {
            let case = junction_store::cases::get(bench.store(), reference)
                .await
                .unwrap()
                .unwrap();
            let ds = deliveries::for_case(bench.store(), &case.id).await.unwrap();
            if let Some(t) = ds.iter().find_map(|d| d.sent_at) {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        h.record((sent_at - *at).num_microseconds().unwrap_or(0).max(0) as u64)
            .unwrap();
    }
    (
        h.value_at_quantile(0.5) as f64 / 1000.0,
        h.value_at_quantile(0.99) as f64 / 1000.0,
        h.max() as f64 / 1000.0,
    )
}

async fn run(label: &'static str, url: &str, rows: &mut Vec<String>) {
    let sim = Simulator::new(Behaviour::default());
    let (sim_addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let bench = Arc::new(start(url, sim_addr).await);
    let rate = burn_down(&bench, label).await;
    assert_eq!(
        sim.requests().len(),
        BURN,
        "each case once at the simulator"
    );
    let (p50, p99, max) = steady(bench.clone()).await;
    eprintln!(
        "  {label}: steady {STEADY_RATE}/s for {STEADY_SECS}s: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
    );
    rows.push(format!(
        "| {label} | open311 → simulator | {rate:.0} | {p50:.1} | {p99:.1} | {max:.1} |"
    ));
    let Ok(bench) = Arc::try_unwrap(bench) else {
        panic!("bench still shared")
    };
    bench.server.shutdown().await.unwrap();
}

/// The queue alone: Junction's claim/settle/queue cost with a connector that needs no network.
async fn queue_alone(label: &'static str, url: &str, rows: &mut Vec<String>) {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("j.toml");
    std::fs::write(
        &cfg,
        format!("[database]\nurl = \"{url}\"\n{CATALOGUE}\n[[connectors]]\nid = \"backend\"\nkind = \"webhook\"\n  [connectors.params]\n  url = \"http://127.0.0.1:9/\"\n  signing_secret = \"${{JUNCTION_TEST_BACKEND_KEY}}\"\n"),
    )
    .unwrap();
    let loaded = junction_server::config::load(&cfg).unwrap();
    junction_store::catalogue::apply(&store, &Actor::internal("bench"), &loaded.catalogue)
        .await
        .unwrap();
    let actor = Actor::internal("bench");
    let intake = junction_api::Intake::new(
        store.clone(),
        Arc::new(loaded.routing.clone()),
        Arc::new(junction_api::NoWaker),
    );
    let before = deliveries::count(&store, "backend", junction_domain::DeliveryState::Sent)
        .await
        .unwrap();
    for n in 0..BURN {
        let new = junction_domain::NewCase {
            case_type_code: "POT".into(),
            description: format!("hole {n}"),
            location: junction_domain::Location {
                address: Some("High St".into()),
                ..Default::default()
            },
            submitter: Default::default(),
            fields: [("depth_cm".to_string(), serde_json::json!(5))].into(),
            source_ref: None,
            media_urls: Vec::new(),
        };
        intake
            .create_case(&actor, "borsetshire", new)
            .await
            .unwrap();
    }
    let mut set = junction_jobs::ConnectorSet::new();
    set.insert(
        "backend".into(),
        junction_jobs::ConnectorHandle {
            ordered: false,
            base: Arc::new(Instant311),
            deliver: Arc::new(Instant311),
            policy: Default::default(),
            timeout: Duration::from_secs(5),
        },
    );
    let runner = junction_jobs::Runner::new(store.clone(), set);
    let queue = junction_jobs::Queue::open(&junction_jobs::Queue::url_for(url))
        .await
        .unwrap();
    let started = Instant::now();
    let tasks = junction_jobs::start(runner, queue, junction_jobs::RunnerConfig::default());
    loop {
        if deliveries::count(&store, "backend", junction_domain::DeliveryState::Sent)
            .await
            .unwrap()
            >= before + BURN as u64
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rate = BURN as f64 / started.elapsed().as_secs_f64();
    for t in tasks {
        t.abort();
    }
    eprintln!("  {label}: queue alone, {BURN} deliveries at {rate:.0}/s");
    rows.push(format!(
        "| {label} | queue alone (no network) | {rate:.0} | – | – | – |"
    ));
}

async fn fresh_postgres(base: &str, name: &str) -> String {
    let admin = sqlx::PgPool::connect(base).await.unwrap();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&admin)
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&admin)
        .await
        .unwrap();
    admin.close().await;
    let (head, _) = base.rsplit_once('/').unwrap();
    format!("{head}/{name}")
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let queue_only = std::env::var("JUNCTION_BENCH_ONLY").is_ok_and(|v| v == "queue");
        let skip_sqlite = std::env::var("JUNCTION_BENCH_SKIP_SQLITE").is_ok_and(|v| v == "1");
        let qdir = tempfile::tempdir().unwrap();
        if !skip_sqlite {
            eprintln!("SQLite");
            if !queue_only {
                run("sqlite", &sqlite, &mut rows).await;
            }
            let qsqlite = format!("sqlite://{}", qdir.path().join("queue.db").display());
            queue_alone("sqlite", &qsqlite, &mut rows).await;
        }
        if let Ok(base) = std::env::var("JUNCTION_TEST_DATABASE_URL") {
            eprintln!("PostgreSQL");
            let pg = fresh_postgres(&base, &format!("junction_dbench_{}", std::process::id())).await;
            if !queue_only {
                run("postgres", &pg, &mut rows).await;
            }
            let pgq = fresh_postgres(&base, &format!("junction_qbench_{}", std::process::id())).await;
            queue_alone("postgres", &pgq, &mut rows).await;
        }
        println!("\n| backend | path | burn-down deliveries/s | p50 ms at {STEADY_RATE}/s | p99 ms | max ms |");
        println!("|---|---|---|---|---|---|");
        for r in rows {
            println!("{r}");
        }
    });
}
