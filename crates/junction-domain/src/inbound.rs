//! Updates a back-end made on cases Junction sent it, as reported (polled, pushed or read
//! from an export), and the rule for what one does to its case.
//!
//! Back-ends repeat themselves, answer late, and a nightly mop-up brings back updates already
//! overtaken. So an update moves its case only when its status means something here, differs
//! from the case's, and is not older than the last status change the case took; an older one
//! is kept in the history, marked out of order, and moves nothing.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::case::CaseStatus;
use crate::status_map::Mapped;

/// An update a back-end made, as it reported it, before it is matched, mapped or applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundUpdate {
    /// The back-end's id for the update; repeats are dropped on (connector, this).
    pub update_id: String,
    /// The back-end's reference for the case.
    pub external_ref: String,
    /// Junction's id for the case, where the back-end echoes the id attribute it was sent.
    #[serde(default)]
    pub our_id: Option<String>,
    /// The back-end's status word, unmapped.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub external_status_code: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub media_urls: Vec<String>,
    pub updated_at: DateTime<Utc>,
}

/// The source name of a connector's updates: `connector:<id>`.
pub fn source_of(connector_id: &str) -> String {
    format!("connector:{connector_id}")
}

/// What an update does to its case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// The case moves to this status.
    Moves(CaseStatus),
    /// History only: the update means no status, or the status the case already has.
    Note,
    /// The update would move the case but is older than the case's last status change: kept in
    /// history, marked out of order, and the newer state stands.
    OutOfOrder(CaseStatus),
}

/// Decides what an update made at `at`, mapped to `mapped`, does to a case now `current`,
/// whose status last changed at `status_at` (by the clock of whoever changed it; `None` while
/// the status is still the one the case was made with).
pub fn effect(
    mapped: Mapped,
    current: CaseStatus,
    status_at: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Effect {
    let Mapped::Status(to) = mapped else {
        return Effect::Note;
    };
    if status_at.is_some_and(|last| at < last) {
        return Effect::OutOfOrder(to);
    }
    if to == current {
        return Effect::Note;
    }
    Effect::Moves(to)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 8, h, m, 0).unwrap()
    }

    #[test]
    fn a_newer_update_moves_an_older_one_is_kept_out_of_order() {
        let fixed = Mapped::Status(CaseStatus::Fixed);
        assert_eq!(
            effect(fixed, CaseStatus::Open, None, t(9, 0)),
            Effect::Moves(CaseStatus::Fixed),
            "a case whose status never changed takes any update, whatever the clocks say"
        );
        assert_eq!(
            effect(fixed, CaseStatus::InProgress, Some(t(10, 0)), t(10, 0)),
            Effect::Moves(CaseStatus::Fixed),
            "the same second counts as newer"
        );
        assert_eq!(
            effect(
                Mapped::Status(CaseStatus::InProgress),
                CaseStatus::Fixed,
                Some(t(10, 0)),
                t(9, 59)
            ),
            Effect::OutOfOrder(CaseStatus::InProgress)
        );
    }

    #[test]
    fn notes_and_the_status_the_case_has_move_nothing() {
        assert_eq!(
            effect(Mapped::NoteOnly, CaseStatus::Open, None, t(9, 0)),
            Effect::Note
        );
        assert_eq!(
            effect(
                Mapped::Status(CaseStatus::Open),
                CaseStatus::Open,
                None,
                t(9, 0)
            ),
            Effect::Note
        );
    }

    #[test]
    fn updates_keep_their_shape_through_storage() {
        let u = InboundUpdate {
            update_id: "u1".into(),
            external_ref: "HW-1".into(),
            our_id: None,
            status: Some("closed".into()),
            external_status_code: Some("NCR".into()),
            description: "Not ours".into(),
            media_urls: vec![],
            updated_at: t(9, 0),
        };
        let back: InboundUpdate =
            serde_json::from_str(&serde_json::to_string(&u).unwrap()).unwrap();
        assert_eq!(back, u);
        assert_eq!(source_of("hw"), "connector:hw");
    }
}
