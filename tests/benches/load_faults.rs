//! The load-and-faults run as a benchmark: the real binary under steady Open311 intake,
//! GraphQL reads and partner subscriptions while the back-end fails and recovers and Junction
//! is killed with SIGKILL and restarted; on SQLite, and on PostgreSQL when
//! `JUNCTION_TEST_DATABASE_URL` is set. `JUNCTION_LOAD_SECS` sets the length (default 60).
//!
//! `JUNCTION_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p junction-tests --bench load_faults`

#[path = "../integration/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "../integration/process.rs"]
#[allow(dead_code)]
mod process;

#[path = "../integration/load_run.rs"]
mod load_run;

use load_run::{LoadRun, load_run};
use support::TestDb;

#[tokio::main]
async fn main() {
    let secs: u64 = std::env::var("JUNCTION_LOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let pg = TestDb::postgres().await;
    let mut runs = vec![("sqlite", None)];
    if let Some(db) = &pg {
        runs.push(("postgres", Some(db.url.clone())));
    }
    println!(
        "| database | reports sent | accepted | report errors | reads | read errors | bystander p50 / p99 ms | bystander errors | delivered once | parked | lost | duplicates | events heard | heard twice | audit | settle (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all_hold = true;
    for (database, database_url) in runs {
        let r = load_run(&LoadRun {
            secs,
            database_url,
            reports_per_sec: 20,
            readers: 4,
            subscribers: 20,
        })
        .await;
        all_hold &= r.holds();
        println!(
            "| {database} | {} | {} | {} | {} | {} | {:.1} / {:.1} | {} of {} | {} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.reports_sent,
            r.reports_accepted,
            r.report_errors,
            r.reads,
            r.read_errors,
            r.bystander_p50_ms,
            r.bystander_p99_ms,
            r.bystander_errors,
            r.bystander_checks,
            r.delivered_once,
            r.parked,
            r.lost,
            r.duplicates,
            r.events_heard,
            r.events_twice,
            if r.audit_verified {
                "verifies"
            } else {
                "BROKEN"
            },
            r.settle_secs,
        );
    }
    if !all_hold {
        eprintln!("a guarantee did not hold");
        std::process::exit(1);
    }
}
