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

#[path = "api/load.rs"]
mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use junction_domain::Role;

use load::{
    CLOSED_SECS, CONNECTIONS, HttpClient, OPEN_SECS, PRECISE_PACING, Target, closed_loop,
    closed_loop_for, open_loop, pin, reqwest_free_get, send, wake_round_trip,
};

/// Closed-loop concurrencies tried; the best is the endpoint's maximum.
const CONCURRENCY: [usize; 3] = [32, 128, 256];
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

/// B, started on the server runtime.
async fn bare_target(server_rt: &tokio::runtime::Handle) -> Target {
    Target {
        name: "B bare axum",
        url: server_rt.spawn(bare_server()).await.unwrap(),
        body: None,
        token: None,
    }
}

/// The load generator's client, keeping a connection per caller.
fn load_client() -> HttpClient {
    Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(CONNECTIONS * 2)
        .build_http()
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
published = true
"#;

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
    if let Ok(base) = std::env::var("JUNCTION_TEST_DATABASE_URL") {
        drop_bench_database(&base).await;
    }
}

async fn drop_bench_database(base: &str) {
    let drop = format!(
        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
        bench_database_name()
    );
    let _ = admin_sql(base, &drop).await;
}

/// Runs one statement on the PostgreSQL server's admin database (`base`).
async fn admin_sql(base: &str, sql: &str) -> Result<(), sqlx::Error> {
    let admin = sqlx::PgPool::connect(base).await?;
    let result = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(&admin)
        .await;
    admin.close().await;
    result.map(|_| ())
}

async fn fresh_postgres(base: &str) -> String {
    let name = bench_database_name();
    drop_bench_database(base).await;
    admin_sql(base, &format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
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
    let callers: usize = env_number("JUNCTION_BENCH_PROFILE_C").unwrap_or(32);
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
    let client = load_client();
    let bare = bare_target(server_rt).await;
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

/// A numeric setting from the environment, if set and a number.
fn env_number<T: std::str::FromStr>(name: &str) -> Option<T> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
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
    if let Some(rounds) = env_number("JUNCTION_BENCH_QUICK") {
        rt.block_on(quick_run(rounds, &server_handle));
        rt.block_on(drop_fresh_postgres());
        return;
    }
    if let Some(n) = env_number("JUNCTION_BENCH_PROFILE") {
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
        let client = load_client();
        let bare = bare_target(&server_handle).await;
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
