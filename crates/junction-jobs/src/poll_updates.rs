//! One update poll of one connector: read the back-end's updates over a window, map each
//! status through the connector's map, and apply them in batches (de-duplicated, ordered,
//! early ones held) through the store.
//!
//! The window overlaps the last one, as FixMyStreet's does, so an update the back-end dated
//! late or a poll that failed is read again by the next; repeats cost nothing. After an outage
//! longer than the window, the window reaches back to where the last successful poll ended.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use junction_connectors::capabilities::{PollUpdates, Window};
use junction_domain::StatusMap;
use junction_store::Store;
use junction_store::inbound::{self, Counts};
use serde_json::{Value, json};

/// Updates applied per transaction.
pub const BATCH: usize = 500;

/// The furthest back a window reaches after an outage.
pub const MAX_CATCH_UP: Duration = Duration::days(7);

/// A connector's update poll, as configured.
#[derive(Clone)]
pub struct UpdatePoll {
    pub connector_id: String,
    pub poller: Arc<dyn PollUpdates>,
    pub statuses: Arc<StatusMap>,
    /// How far back each poll reads.
    pub window: Duration,
}

/// The window for a poll at `now`: `window` back, or back to where the last successful poll
/// ended (`cursor.to`) if that is earlier, never more than [`MAX_CATCH_UP`].
pub fn window_for(window: Duration, cursor: Option<&Value>, now: DateTime<Utc>) -> Window {
    let last_end = cursor
        .and_then(|c| c.get("to"))
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let mut from = now - window;
    if let Some(end) = last_end
        && end < from
    {
        from = end.max(now - MAX_CATCH_UP);
    }
    Window { from, to: now }
}

/// Runs one poll; returns the counts and the cursor to keep, or the reason it failed.
pub async fn run(
    store: &Store,
    poll: &UpdatePoll,
    window: Window,
) -> Result<(Counts, Value), String> {
    // Updates held by a process that could not see their reference arrive are applied first.
    let released = inbound::release_known(store, &poll.connector_id)
        .await
        .map_err(|e| format!("applying held updates: {e}"))?;
    let updates = poll
        .poller
        .poll_updates(window)
        .await
        .map_err(|e| e.message)?;
    let mut counts = Counts::default();
    for chunk in updates.chunks(BATCH) {
        let mapped: Vec<_> = chunk
            .iter()
            .map(|u| {
                let m = poll
                    .statuses
                    .map(u.status.as_deref(), u.external_status_code.as_deref());
                (u.clone(), m)
            })
            .collect();
        let outcomes = inbound::apply_batch(store, &poll.connector_id, &mapped)
            .await
            .map_err(|e| format!("applying updates: {e}"))?;
        for o in &outcomes {
            counts.add(o);
        }
    }
    counts.applied += released;
    tracing::info!(
        connector = %poll.connector_id,
        read = updates.len(),
        applied = counts.applied,
        moved = counts.moved,
        repeats = counts.repeats,
        held = counts.held,
        out_of_order = counts.out_of_order,
        "update poll"
    );
    let cursor = json!({"to": window.to.to_rfc3339()});
    Ok((counts, cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn windows_overlap_and_reach_back_after_an_outage_but_not_for_ever() {
        let now = Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap();
        let two_hours = Duration::hours(2);
        let w = window_for(two_hours, None, now);
        assert_eq!((w.from, w.to), (now - two_hours, now));
        let recent = json!({"to": (now - Duration::minutes(15)).to_rfc3339()});
        assert_eq!(
            window_for(two_hours, Some(&recent), now).from,
            now - two_hours
        );
        let outage = json!({"to": (now - Duration::hours(5)).to_rfc3339()});
        assert_eq!(
            window_for(two_hours, Some(&outage), now).from,
            now - Duration::hours(5)
        );
        let ancient = json!({"to": (now - Duration::days(30)).to_rfc3339()});
        assert_eq!(
            window_for(two_hours, Some(&ancient), now).from,
            now - MAX_CATCH_UP
        );
    }
}
