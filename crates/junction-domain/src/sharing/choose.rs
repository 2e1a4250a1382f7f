//! Sharing a case by hand: the reason checked and the one agreement it is shared under chosen.

use chrono::{DateTime, Utc};

use super::Agreement;
use crate::ValidationErrors;

/// Longest reason a share may give, in characters.
pub const MAX_REASON_CHARS: usize = 2_000;

/// Checks the reason for sharing a case of type `case_type` with `agency`, and picks the
/// agreement it is shared under from that agency's `agreements`: the one named, or the only
/// active one covering the case type. Refusals name the field the caller got wrong.
pub fn choose_agreement<'a>(
    agreements: &'a [Agreement],
    agency: &str,
    case_type: &str,
    named: Option<&str>,
    reason: &str,
    now: DateTime<Utc>,
) -> Result<&'a Agreement, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    if reason.trim().is_empty() {
        errors.push("reason", "is required: say why the case is shared");
    } else if reason.chars().count() > MAX_REASON_CHARS {
        errors.push(
            "reason",
            format!("is longer than {MAX_REASON_CHARS} characters"),
        );
    }
    errors.into_result()?;
    let usable: Vec<&Agreement> = agreements
        .iter()
        .filter(|a| a.covers(case_type) && a.is_active(now))
        .filter(|a| named.is_none_or(|id| a.id == id))
        .collect();
    let mut errors = ValidationErrors::default();
    match (usable.as_slice(), named) {
        ([one], _) => return Ok(one),
        ([], Some(id)) => errors.push(
            "agreement",
            format!(
                "`{id}` is not an active agreement with `{agency}` covering case type `{case_type}`"
            ),
        ),
        ([], None) => errors.push(
            "agency",
            format!("no active agreement with `{agency}` covers case type `{case_type}`"),
        ),
        (_, _) => errors.push(
            "agreement",
            "more than one active agreement covers this case: name the one to share under",
        ),
    }
    Err(errors)
}
