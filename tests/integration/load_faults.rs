//! A short load-and-faults run in the suite (the full one is `cargo bench --bench
//! load_faults`): under load, with the back-end failing and recovering and Junction killed
//! with SIGKILL, nothing accepted is lost or sent twice, subscribers hear each event once, and
//! the audit chain verifies.

use crate::load_run::{LoadRun, load_run};

#[tokio::test]
async fn under_load_through_a_failing_back_end_and_a_sigkill_nothing_is_lost_or_doubled() {
    let report = load_run(&LoadRun {
        secs: 12,
        database_url: None,
        reports_per_sec: 8,
        readers: 2,
        subscribers: 2,
    })
    .await;
    assert!(report.reports_accepted > 20, "{report:?}");
    assert!(report.reads > 0 && report.events_heard > 0, "{report:?}");
    assert!(report.holds(), "{report:?}");
}
