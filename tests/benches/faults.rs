//! The fault run as a benchmark: 1,000 cases (`JUNCTION_FAULT_CASES`) through a back-end that
//! refuses each first POST, hangs after storing every 5th and ignores lookup filters, with
//! Junction killed with SIGKILL twice; on SQLite, and on PostgreSQL when
//! `JUNCTION_TEST_DATABASE_URL` is set; proving by lookup, and against a de-duplicating
//! back-end with `dedupes_on_id`. Prints the counts and the time to settle of each.
//!
//! `JUNCTION_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test cargo bench -p junction-tests --bench faults`

#[path = "../integration/support/mod.rs"]
#[allow(dead_code)]
mod support;

#[path = "../integration/process.rs"]
#[allow(dead_code)]
mod process;

#[path = "../integration/fault_run.rs"]
mod fault_run;

use fault_run::{FaultRun, fault_run};
use support::TestDb;

#[tokio::main]
async fn main() {
    let cases: usize = std::env::var("JUNCTION_FAULT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let pg = TestDb::postgres().await;
    let pg_second = TestDb::postgres().await;
    let mut runs = vec![
        ("sqlite", "lookup", None),
        ("sqlite", "dedupes_on_id", None),
    ];
    if let (Some(a), Some(b)) = (&pg, &pg_second) {
        runs.push(("postgres", "lookup", Some(a.url.clone())));
        runs.push(("postgres", "dedupes_on_id", Some(b.url.clone())));
    }
    println!(
        "| database | proof | cases | delivered once | parked | duplicates | sent, not held | wrong refs | unsettled | settle (s) | total (s) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let mut all_hold = true;
    for (database, proof, database_url) in runs {
        let report = fault_run(&FaultRun {
            cases,
            database_url,
            dedupe: proof == "dedupes_on_id",
            kills: 2,
        })
        .await;
        all_hold &= report.holds();
        println!(
            "| {database} | {proof} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {:.1} |",
            report.cases,
            report.delivered_once,
            report.parked,
            report.duplicates,
            report.sent_not_held,
            report.wrong_refs,
            report.unsettled,
            report.settle_secs,
            report.total_secs
        );
    }
    if !all_hold {
        eprintln!("a guarantee did not hold");
        std::process::exit(1);
    }
}
