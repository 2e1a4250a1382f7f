//! Notices to partner agencies that a case was shared with them: whether one may still go, and
//! what it says. The case it carries is redacted by the partner's [`super::Lens`].

use chrono::{DateTime, Utc};

use super::Agreement;

/// The notice text for case `reference` shared with `agency` under `agreement`, or why nothing
/// may be sent: the agreement is gone or no longer active, or the case is no longer shared
/// with the agency under it.
pub fn share_notice(
    reference: &str,
    agency: &str,
    agreement_id: &str,
    agreement: Option<&Agreement>,
    still_shared: bool,
    now: DateTime<Utc>,
) -> Result<String, String> {
    let Some(agreement) = agreement else {
        return Err(format!(
            "agreement `{agreement_id}` no longer exists: nothing sent"
        ));
    };
    if !agreement.is_active(now) {
        return Err(format!(
            "agreement `{agreement_id}` is {}: nothing sent",
            agreement.state(now).as_str()
        ));
    }
    if !still_shared {
        return Err(format!(
            "case {reference} is no longer shared with `{agency}`: nothing sent"
        ));
    }
    Ok(format!(
        "Case {reference} has been shared with {agency} under data sharing agreement `{}` ({}; \
         lawful basis: {}). Only what the agreement allows is shown.",
        agreement.id, agreement.title, agreement.lawful_basis
    ))
}
