//! Junction killed with SIGKILL twice while it delivers to a back-end that behaves as council
//! systems do (each case's first POST refused, a hang after storing every 5th, lookup filters
//! ignored, no de-duplication), then restarted: every case is at the back-end exactly once with
//! its own reference, or parked for a person with the reason; none twice, none marked sent
//! that the back-end does not hold. On SQLite, and on PostgreSQL when it is configured.

use crate::fault_run::{FaultRun, fault_run};
use crate::support::TestDb;

const CASES: usize = 1_000;

#[tokio::test]
async fn sigkill_twice_against_a_back_end_that_hangs_and_ignores_filters_loses_nothing_and_sends_nothing_twice()
 {
    let pg = TestDb::postgres().await;
    let mut databases = vec![("sqlite", None)];
    if let Some(db) = &pg {
        databases.push(("postgres", Some(db.url.clone())));
    }
    for (name, database_url) in databases {
        let report = fault_run(&FaultRun {
            cases: CASES,
            database_url,
            dedupe: false,
            kills: 2,
        })
        .await;
        eprintln!("fault run on {name}: {report:?}");
        assert!(report.holds(), "on {name}: {report:?}");
        assert!(
            report.delivered_once >= CASES * 9 / 10,
            "on {name}, only what was in flight at a kill may need a person: {report:?}"
        );
    }
}

#[tokio::test]
async fn a_back_end_that_de_duplicates_gets_every_case_once_through_two_kills() {
    let report = fault_run(&FaultRun {
        cases: 300,
        database_url: None,
        dedupe: true,
        kills: 2,
    })
    .await;
    eprintln!("fault run with de-duplication: {report:?}");
    assert!(report.holds(), "{report:?}");
    assert_eq!(report.delivered_once, 300, "{report:?}");
    assert_eq!(report.parked, 0);
}
