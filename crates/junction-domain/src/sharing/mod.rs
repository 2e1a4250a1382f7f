//! Sharing with partner agencies: data sharing agreements, the classified attributes of a case,
//! and the one lens through which a partner sees a shared case.
//!
//! Every read path (GraphQL queries, nested fields, lists, counts, filters, subscriptions and
//! anything sent to a partner) asks the same questions of this module: is the case visible under
//! an active agreement for the stated purpose, and which of its attributes may be shown.

mod agreement;
mod choose;
mod classification;
mod lens;
mod notice;
#[cfg(test)]
mod tests;

pub use agreement::{Agreement, AgreementState, AgreementStatus, ShareRule};
pub use choose::{MAX_REASON_CHARS, choose_agreement};
pub use classification::{CORE_DEFAULTS, CoreClassification, ENVELOPE};
pub use lens::{Access, Lens, PartnerScope, ScopeError, Share, access};
pub use notice::share_notice;

/// A purpose as a partner states it: a short machine name.
pub fn valid_purpose(purpose: &str) -> bool {
    !purpose.is_empty()
        && purpose.len() <= 64
        && purpose
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}
