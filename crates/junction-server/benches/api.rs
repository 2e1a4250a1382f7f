//! API overhead benchmark: an authenticated, audited GraphQL query against a bare axum JSON
//! endpoint, in the same run on the same machine, on SQLite and (when
//! `JUNCTION_TEST_DATABASE_URL` is set) PostgreSQL.
//!
//!     cargo bench -p junction-server --bench api
//!     JUNCTION_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p junction-server --bench api
//!
//! The server side (Junction, the bare endpoint, and the threads they start) runs on a runtime
//! pinned to CPU 1 and the load generator on CPU 0, as the benchmark method asks (disjoint
//! cores for load and server), so the ratio compares what one core of server achieves.
//!
//! Load tool: this file's own generator (hyper client, HdrHistogram). Closed loop at 32, 128
//! and 256 connections, the best being the endpoint's maximum; then open loop at half of each
//! endpoint's maximum, latency measured from each request's scheduled send time (no coordinated
//! omission), the schedule kept to within microseconds rather than tokio's millisecond timer
//! ticks. Every response body is checked: a GraphQL 200 carrying `errors` counts as a
//! failure. After each run the audit log must hold exactly one record per GraphQL request.
//!
//! Each pinned run also prints a machine check, the cross-CPU wake-up round trip before and
//! after, because on this virtual machine every figure moves with the host's load.
//! `JUNCTION_BENCH_PROFILE=N` runs N G0a requests (G1a with `JUNCTION_BENCH_PROFILE_READ=1`)
//! and exits, for instruction counts under callgrind (see `profile_run`);
//! `JUNCTION_BENCH_QUICK=N` alternates B and G0a N times, for comparing builds (see
//! `quick_run`). Both run on PostgreSQL with `JUNCTION_BENCH_ONLY=postgres`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use bytes_body::full;
use hdrhistogram::Histogram;
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use junction_domain::Role;

/// Closed-loop concurrencies tried; the best is the endpoint's maximum.
const CONCURRENCY: [usize; 3] = [32, 128, 256];
/// Whether the open loop's pacer may keep the load generator's core busy (it has one of its
/// own).
static PRECISE_PACING: AtomicBool = AtomicBool::new(false);
/// Workers sharing the open-loop schedule.
const CONNECTIONS: usize = 256;
const CLOSED_SECS: u64 = 5;
const OPEN_SECS: u64 = 5;

mod bytes_body {
    pub type Body = http_body_util::Full<axum::body::Bytes>;
    pub fn full(s: &str) -> Body {
        http_body_util::Full::new(axum::body::Bytes::copy_from_slice(s.as_bytes()))
    }
}

#[derive(Clone)]
struct Target {
    name: &'static str,
    url: String,
    body: Option<String>,
    token: Option<String>,
}

type HttpClient = Client<HttpConnector, bytes_body::Body>;

async fn send(client: &HttpClient, t: &Target) -> bool {
    let builder = hyper::Request::builder().uri(&t.url);
    let req = match &t.body {
        Some(b) => {
            let mut r = builder
                .method("POST")
                .header("content-type", "application/json");
            if let Some(tok) = &t.token {
                r = r.header("authorization", format!("Bearer {tok}"));
            }
            r.body(full(b)).unwrap()
        }
        None => builder.method("GET").body(full("")).unwrap(),
    };
    match client.request(req).await {
        Ok(resp) => {
            let ok = resp.status() == 200;
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            ok && !body.windows(8).any(|w| w == b"\"errors\"")
        }
        Err(_) => false,
    }
}

/// Requests per second with `connections` callers sending back to back; also failures and the
/// number of requests sent.
async fn closed_loop(client: &HttpClient, t: &Target, connections: usize) -> (f64, u64, u64) {
    closed_loop_for(client, t, connections, CLOSED_SECS).await
}

async fn closed_loop_for(
    client: &HttpClient,
    t: &Target,
    connections: usize,
    secs: u64,
) -> (f64, u64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let (client, t, done, failed) = (client.clone(), t.clone(), done.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if send(&client, &t).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let (ok, bad) = (done.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    (ok as f64 / started.elapsed().as_secs_f64(), bad, ok + bad)
}

/// Latency percentiles (ms) at a fixed rate, measured from each request's scheduled time.
/// `CONNECTIONS` workers share the schedule (worker `w` takes slots `w`, `w + K`, …); a late
/// worker's delay counts against the requests that waited for it.
///
/// One pacer task keeps the schedule to within a pass of the load generator's scheduler: it
/// sleeps on tokio's timer until shortly before a slot is due and then yields until it is.
/// Tokio's timers alone tick in whole milliseconds: every request started up to 1 ms late and
/// a millisecond's worth left together, so the load tool's rounding showed up in every
/// percentile. (A pacer thread of its own cost the load generator's core a context switch per
/// wake and could not keep up with the bare endpoint's rate.) The yielding keeps the load
/// generator's core busy, so it is done only when that core is the generator's alone
/// (pinned); sharing cores with the server, the pacer keeps to tokio's timer.
async fn open_loop(client: &HttpClient, t: &Target, rate: f64) -> OpenLoop {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let total = (rate * OPEN_SECS as f64) as u64;
    let start = Instant::now() + Duration::from_millis(50);
    let mut tasks = Vec::new();
    let mut slots = Vec::new();
    for _ in 0..CONNECTIONS {
        let (client, t) = (client.clone(), t.clone());
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
        slots.push(tx);
        tasks.push(tokio::spawn(async move {
            let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
            let mut from_send = hist.clone();
            let mut failed = 0u64;
            while let Some(scheduled) = rx.recv().await {
                let sent = Instant::now();
                if !send(&client, &t).await {
                    failed += 1;
                }
                let us = |since: Instant| (since.elapsed().as_micros() as u64).max(1);
                hist.record(us(scheduled)).unwrap();
                from_send.record(us(sent)).unwrap();
            }
            (hist, from_send, failed)
        }));
    }
    let pacer = tokio::spawn(async move {
        for slot in 0..total {
            let due = start + interval.mul_f64(slot as f64);
            if !PRECISE_PACING.load(Ordering::Relaxed) {
                tokio::time::sleep_until(due.into()).await;
            } else {
                // Tokio's timer for the long stretches; the last millisecond or two by
                // yielding, which checks the clock again after every other task and the I/O
                // poll have had their turn.
                if let Some(far) = due.checked_sub(Duration::from_millis(2))
                    && far > Instant::now()
                {
                    tokio::time::sleep_until(far.into()).await;
                }
                while Instant::now() < due {
                    tokio::task::yield_now().await;
                }
            }
            let _ = slots[(slot % CONNECTIONS as u64) as usize].send(due);
        }
    });
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).unwrap();
    let mut from_send = hist.clone();
    let mut failed = 0;
    for task in tasks {
        let (h, s, f) = task.await.unwrap();
        hist.add(h).unwrap();
        from_send.add(s).unwrap();
        failed += f;
    }
    pacer.await.unwrap();
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    OpenLoop {
        p50: ms(&hist, 0.5),
        p99: ms(&hist, 0.99),
        p999: ms(&hist, 0.999),
        p99_from_send: ms(&from_send, 0.99),
        sent: total,
        failed,
    }
}

/// What an open loop measured: latency (ms) from each request's scheduled time (the method's
/// figure), the p99 from the moment each request actually left, requests sent and failures.
/// The two p99s differ by time spent in the load generator before sending: its worker still
/// waiting for an earlier response, or its core not running (on this virtual machine the
/// host stops a vCPU for milliseconds at a time).
struct OpenLoop {
    p50: f64,
    p99: f64,
    p999: f64,
    p99_from_send: f64,
    sent: u64,
    failed: u64,
}

struct Row {
    backend: &'static str,
    endpoint: &'static str,
    max_rps: f64,
    best_c: usize,
    rate: f64,
    p50: f64,
    p99: f64,
    p999: f64,
    p99_from_send: f64,
    failures: u64,
}

async fn bare_server() -> String {
    // The same middleware as Junction (request id, request span, completion log line),
    // no GraphQL, no audit: the method's B.
    let body = r#"{"data":{"me":{"subject":"bench","agency":null,"roles":["OFFICER"]}},"padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let app = Router::new()
        .route(
            "/bench/json",
            get(move || async move {
                (
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    body,
                )
            }),
        )
        .layer(axum::middleware::from_fn(
            junction_server::request_id::layer,
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/bench/json")
}

const CATALOGUE: &str = r#"
[telemetry]
log_level = "warn"

[[jurisdictions]]
id = "bench"
name = "Bench"

[[agencies]]
id = "highways"
name = "Highways"
kind = "department"

[[case_types]]
code = "POT"
name = "Pothole"
agency = "highways"
"#;

/// Pins the calling thread to `cpu` (threads it starts inherit the mask).
fn pin(cpu: usize) {
    if cpu == usize::MAX {
        return;
    }
    let mut set = nix::sched::CpuSet::new();
    if set.set(cpu).is_ok() {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
}

/// A Junction server on `url` with the bench catalogue, and an officer's token for it.
async fn start_junction(
    url: &str,
    server_rt: &tokio::runtime::Handle,
) -> (junction_server::RunningServer, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junction.toml");
    std::fs::write(
        &path,
        format!("[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n\n[database]\nurl = \"{url}\"\n{CATALOGUE}", dir.path().display()),
    )
    .unwrap();
    let loaded = junction_server::config::load(&path).unwrap();
    let token = junction_server::app::authenticator(&loaded)
        .unwrap()
        .issue(
            "bench",
            Some("highways"),
            &[Role::Officer],
            Duration::from_secs(3600),
        )
        .unwrap();
    let server = server_rt
        .spawn(junction_server::start(loaded))
        .await
        .unwrap()
        .unwrap();
    (server, token, dir)
}

/// Creates the case that G1a reads (id 1).
async fn seed_case(client: &HttpClient, base: &str, token: &str) {
    let create = Target {
        name: "create",
        url: base.to_string(),
        body: Some(r#"{"query":"mutation { createCase(input: {caseType: \"POT\", description: \"bench\", location: {address: \"Bench Lane\"}}) { id } }"}"#.into()),
        token: Some(token.to_string()),
    };
    assert!(send(client, &create).await, "seed case");
}

/// The G1a request: one indexed read.
fn case_target(base: &str, token: &str) -> Target {
    Target {
        name: "G1a case(id)",
        url: base.to_string(),
        body: Some(
            r#"{"query":"query Case { case(id: \"1\") { reference status caseTypeCode } }"}"#
                .into(),
        ),
        token: Some(token.to_string()),
    }
}

/// The G0a request.
fn me_target(base: &str, token: &str) -> Target {
    Target {
        name: "G0a { me }",
        url: base.to_string(),
        body: Some(r#"{"query":"query Me { me { subject agency roles } }"}"#.into()),
        token: Some(token.to_string()),
    }
}

async fn run_backend(
    backend: &'static str,
    url: &str,
    client: &HttpClient,
    bare: &Target,
    rows: &mut Vec<Row>,
    server_rt: &tokio::runtime::Handle,
    graphql: bool,
) {
    let (server, token, _dir) = start_junction(url, server_rt).await;
    let store = server.store.clone();
    let base = format!("http://{}/graphql", server.addr);
    seed_case(client, &base, &token).await;
    let targets = [me_target(&base, &token), case_target(&base, &token)];
    for t in [bare.clone()].iter().chain(targets.iter()) {
        if backend != "sqlite" && t.name == "B bare axum" {
            continue; // measured once, with the SQLite run
        }
        if !graphql && t.body.is_some() {
            continue;
        }
        let before = junction_store::audit::count(&store).await.unwrap();
        let (mut max_rps, mut closed_failures, mut closed_sent, mut best_c) = (0.0, 0, 0, 0);
        for c in CONCURRENCY {
            let (rps, failures, sent) = closed_loop(client, t, c).await;
            eprintln!("  {backend} {} closed loop c={c}: {rps:.0} req/s", t.name);
            closed_failures += failures;
            closed_sent += sent;
            if rps > max_rps {
                (max_rps, best_c) = (rps, c);
            }
        }
        let rate = (max_rps / 2.0).max(1.0);
        let open = open_loop(client, t, rate).await;
        let (sent, open_failures) = (open.sent, open.failed);
        if t.body.is_some() {
            // Each response was read only after its record was committed, so the count is exact.
            let after = junction_store::audit::count(&store).await.unwrap();
            assert_eq!(
                after - before,
                closed_sent + sent,
                "{backend} {}: one durable audit record per request",
                t.name
            );
            eprintln!(
                "  {backend} {}: {} requests, {} audit records",
                t.name,
                closed_sent + sent,
                after - before
            );
        }
        rows.push(Row {
            backend,
            endpoint: t.name,
            max_rps,
            best_c,
            rate,
            p50: open.p50,
            p99: open.p99,
            p999: open.p999,
            p99_from_send: open.p99_from_send,
            failures: closed_failures + open_failures,
        });
    }
    let metrics = reqwest_free_get(&format!("http://{}/metrics", server.addr)).await;
    // Batch sizes and times; the time buckets show the slow commits behind a high p99.
    for line in metrics.lines().filter(|l| {
        l.starts_with("junction_audit_batch")
            && (l.contains("_sum") || l.contains("_count") || l.contains("seconds_bucket"))
    }) {
        eprintln!("  {backend} {line}");
    }
    server_rt.spawn(server.shutdown()).await.unwrap().unwrap();
    let report = junction_store::audit::verify(&store).await.unwrap();
    assert_eq!(report.first_bad, None, "audit chain intact after the run");
    eprintln!(
        "  {backend}: audit chain verified, {} records",
        report.checked
    );
}

/// GET with a plain hyper client.
async fn reqwest_free_get(url: &str) -> String {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let resp = client
        .request(hyper::Request::get(url).body(full("")).unwrap())
        .await
        .unwrap();
    String::from_utf8_lossy(&resp.into_body().collect().await.unwrap().to_bytes()).to_string()
}

/// The database of a single-backend run (quick and profile): PostgreSQL with
/// `JUNCTION_BENCH_ONLY=postgres` and `JUNCTION_TEST_DATABASE_URL`, else SQLite in `dir`.
async fn one_database(dir: &std::path::Path) -> String {
    match std::env::var("JUNCTION_TEST_DATABASE_URL") {
        Ok(base) if std::env::var("JUNCTION_BENCH_ONLY").is_ok_and(|v| v == "postgres") => {
            fresh_postgres(&base).await
        }
        _ => format!("sqlite://{}", dir.join("bench.db").display()),
    }
}

/// This run's PostgreSQL database.
fn bench_database_name() -> String {
    format!("junction_bench_{}", std::process::id())
}

/// Drops this run's PostgreSQL database, if it made one.
async fn drop_fresh_postgres() {
    let Ok(base) = std::env::var("JUNCTION_TEST_DATABASE_URL") else {
        return;
    };
    let admin = sqlx::PgPool::connect(&base).await.unwrap();
    let drop = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        bench_database_name()
    );
    let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(&admin).await;
    admin.close().await;
}

async fn fresh_postgres(base: &str) -> String {
    let name = bench_database_name();
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

/// `JUNCTION_BENCH_PROFILE=N`: exactly `N` G0a requests (G1a with
/// `JUNCTION_BENCH_PROFILE_READ=1`) from 32 callers (`JUNCTION_BENCH_PROFILE_C` to change)
/// against SQLite, then exit, printing the audit writer's mean batch. For instruction counts,
/// which stay the same however busy the machine is:
///
///     JUNCTION_BENCH_PROFILE=2000 valgrind --tool=callgrind target/release/deps/api-… --bench
///
/// Two runs with different `N` give the cost of one request as the difference over the
/// difference in `N`, start-up cancelled out. Without valgrind, the server core's busy time
/// over `N` (from `/proc/stat`) is its CPU time per request.
async fn profile_run(n: u64, server_rt: &tokio::runtime::Handle) {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let dir = tempfile::tempdir().unwrap();
    let url = one_database(dir.path()).await;
    let (server, token, _dir) = start_junction(&url, server_rt).await;
    let base = format!("http://{}/graphql", server.addr);
    // JUNCTION_BENCH_PROFILE_READ=1 profiles G1a (one indexed read) instead.
    let target = if std::env::var_os("JUNCTION_BENCH_PROFILE_READ").is_some() {
        seed_case(&client, &base, &token).await;
        case_target(&base, &token)
    } else {
        me_target(&base, &token)
    };
    let next = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    let callers: usize = std::env::var("JUNCTION_BENCH_PROFILE_C")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(32);
    for _ in 0..callers {
        let (client, target, next, failed) =
            (client.clone(), target.clone(), next.clone(), failed.clone());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n {
                if !send(&client, &target).await {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let records = junction_store::audit::count(&server.store).await.unwrap();
    let metrics = reqwest_free_get(&format!("http://{}/metrics", server.addr)).await;
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or(f64::NAN)
    };
    let batches = value("junction_audit_batch_size_count");
    eprintln!(
        "mean audit batch {:.1} records, {:.0} µs",
        value("junction_audit_batch_size_sum") / batches,
        value("junction_audit_batch_seconds_sum") / batches * 1e6
    );
    server_rt.spawn(server.shutdown()).await.unwrap().unwrap();
    eprintln!(
        "{n} requests, {} failed, {records} audit records",
        failed.load(Ordering::Relaxed)
    );
}

/// `JUNCTION_BENCH_QUICK=N`: N rounds of B then G0a (SQLite, or PostgreSQL with
/// `JUNCTION_BENCH_ONLY=postgres`), closed loop at 128 callers for 3 s each, printing each
/// round's ratio and their median. B and G0a alternate within seconds of each other, so a
/// host whose speed drifts moves both; for comparing two builds, run them in turn.
async fn quick_run(rounds: usize, server_rt: &tokio::runtime::Handle) {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNECTIONS * 2)
        .build_http();
    let bare_url = server_rt.spawn(bare_server()).await.unwrap();
    let bare = Target {
        name: "B bare axum",
        url: bare_url,
        body: None,
        token: None,
    };
    let dir = tempfile::tempdir().unwrap();
    let url = one_database(dir.path()).await;
    let (server, token, _dir) = start_junction(&url, server_rt).await;
    let me = me_target(&format!("http://{}/graphql", server.addr), &token);
    let mut ratios = Vec::new();
    for round in 0..rounds {
        let (b, _, _) = closed_loop_for(&client, &bare, 128, 3).await;
        let (g, failed, _) = closed_loop_for(&client, &me, 128, 3).await;
        assert_eq!(failed, 0);
        ratios.push(g / b);
        eprintln!("round {round}: B {b:.0}, G0a {g:.0}, ratio {:.3}", g / b);
    }
    ratios.sort_by(f64::total_cmp);
    eprintln!("median ratio {:.3}", ratios[ratios.len() / 2]);
    server_rt.spawn(server.shutdown()).await.unwrap().unwrap();
}

/// The median time (µs) for a thread on one CPU to wake a thread on the other and be woken
/// back. On this kind of virtual machine it moves with the host's load (31 to 58 µs over one
/// session), and the figures of a run move with it, so each run prints it.
fn wake_round_trip(a: usize, b: usize) -> f64 {
    let (to_b, at_b) = std::sync::mpsc::channel::<()>();
    let (to_a, at_a) = std::sync::mpsc::channel::<()>();
    let echo = std::thread::spawn(move || {
        pin(b);
        while at_b.recv().is_ok() {
            if to_a.send(()).is_err() {
                break;
            }
        }
    });
    let mut times = std::thread::spawn(move || {
        pin(a);
        let mut times = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let sent = Instant::now();
            to_b.send(()).unwrap();
            at_a.recv().unwrap();
            times.push(sent.elapsed());
        }
        times
    })
    .join()
    .unwrap();
    echo.join().unwrap();
    times.sort();
    times[times.len() / 2].as_secs_f64() * 1e6
}

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; there are no unit tests here
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    // JUNCTION_BENCH_PIN=0 lets both sides use every core instead.
    let pinned = cpus >= 2 && std::env::var("JUNCTION_BENCH_PIN").map_or(true, |v| v != "0");
    let (client_cpu, server_cpu) = if pinned {
        (0, 1)
    } else {
        (usize::MAX, usize::MAX)
    };
    PRECISE_PACING.store(pinned, Ordering::Relaxed);
    let wake_before = if pinned {
        wake_round_trip(client_cpu, server_cpu)
    } else {
        f64::NAN
    };
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pinned { 1 } else { cpus })
        .on_thread_start(move || pin(server_cpu))
        .enable_all()
        .build()
        .unwrap();
    let server_handle = server_rt.handle().clone();
    pin(client_cpu);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(if pinned { 1 } else { cpus })
        .on_thread_start(move || pin(client_cpu))
        .enable_all()
        .build()
        .unwrap();
    if let Some(rounds) = std::env::var("JUNCTION_BENCH_QUICK")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rt.block_on(quick_run(rounds, &server_handle));
        rt.block_on(drop_fresh_postgres());
        return;
    }
    if let Some(n) = std::env::var("JUNCTION_BENCH_PROFILE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        rt.block_on(profile_run(n, &server_handle));
        rt.block_on(drop_fresh_postgres());
        return;
    }
    if pinned {
        eprintln!("server on CPU {server_cpu}, load generator on CPU {client_cpu}");
        eprintln!("machine check: cross-CPU wake-up round trip {wake_before:.0} µs (median)");
    } else {
        eprintln!("server and load generator share all {cpus} CPUs");
    }
    rt.block_on(async {
        let client: HttpClient = Client::builder(TokioExecutor::new()).pool_max_idle_per_host(CONNECTIONS * 2).build_http();
        let bare_url = server_handle.spawn(bare_server()).await.unwrap();
        let bare = Target { name: "B bare axum", url: bare_url, body: None, token: None };
        let mut rows = Vec::new();
        let sqlite_dir = tempfile::tempdir().unwrap();
        let sqlite_url = format!("sqlite://{}", sqlite_dir.path().join("bench.db").display());
        eprintln!("running on SQLite ({CLOSED_SECS}s closed loop + {OPEN_SECS}s open loop per endpoint)");
        // JUNCTION_BENCH_ONLY=postgres measures the bare endpoint and PostgreSQL only.
        let sqlite_too = std::env::var("JUNCTION_BENCH_ONLY").map_or(true, |v| v != "postgres");
        run_backend("sqlite", &sqlite_url, &client, &bare, &mut rows, &server_handle, sqlite_too).await;
        if let Ok(base) = std::env::var("JUNCTION_TEST_DATABASE_URL") {
            eprintln!("running on PostgreSQL");
            let url = fresh_postgres(&base).await;
            run_backend("postgres", &url, &client, &bare, &mut rows, &server_handle, true).await;
            drop_fresh_postgres().await;
        }
        let bare_rps = rows.iter().find(|r| r.endpoint == "B bare axum").map(|r| r.max_rps).unwrap_or(f64::NAN);
        println!("\n| backend | endpoint | max req/s | at c | ratio to bare | open-loop rate | p50 ms | p99 ms | p99.9 ms | p99 ms from send | failures |");
        println!("|---|---|---|---|---|---|---|---|---|---|---|");
        for r in &rows {
            println!(
                "| {} | {} | {:.0} | {} | {:.2} | {:.0}/s | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
                r.backend, r.endpoint, r.max_rps, r.best_c, r.max_rps / bare_rps, r.rate, r.p50, r.p99, r.p999, r.p99_from_send, r.failures
            );
        }
    });
    if pinned {
        let wake_after = wake_round_trip(client_cpu, server_cpu);
        println!(
            "\nMachine check, cross-CPU wake-up round trip (median): {wake_before:.0} µs before, {wake_after:.0} µs after."
        );
    }
}
