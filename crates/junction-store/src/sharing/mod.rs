//! Sharing: data sharing agreements, shares of cases with partners, the partner feed and the
//! disclosure log.
//!
//! Every change here writes a case event (for shares) and an audit entry in the same
//! transaction. Fed case events take their feed position from a counter on the audit head row,
//! under that row's lock, so the feed is in commit order: a reader that has seen position N has
//! seen every position below it.

mod agreements;
mod disclosures;
mod feed;
mod shares;

pub use agreements::{
    AgreementSource, StoredAgreement, agreement, agreements, agreements_for_agency, apply_config,
    save_agreement, set_agreement_status,
};
pub use disclosures::{DisclosureRecord, disclosures};
pub use feed::{FEED_CHANNEL, FeedEntry, FeedWaiter, cases_by_id, feed_after, feed_head};
pub(crate) use feed::{
    notify_statement, placeholder as feed_placeholder, position_statements, waiting,
};
pub(crate) use shares::apply_rules;
pub use shares::{ShareRecord, ShareRequest, live_shares, share, shares_of_case, unshare};
