//! The connector contract: what every delivery connector is given and what it answers.
//! `docs/connectors/SPEC.md` states it in prose; the conformance suite checks it.

use chrono::{DateTime, Utc};
use junction_domain::{Case, Finding, Proof, Route};

use crate::ConnectorError;

/// One delivery attempt, as a connector sees it.
#[derive(Debug, Clone)]
pub struct Outbound<'a> {
    pub case: &'a Case,
    /// The case type's human name (Open311's `service_name`).
    pub service_name: &'a str,
    pub route: Option<&'a Route>,
    /// The same for every attempt of this delivery: back-ends de-duplicate on it.
    pub idempotency_key: &'a str,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When the first attempt began, so a connector asking what became of an unanswered one
    /// knows where to look.
    pub first_attempt_at: Option<DateTime<Utc>>,
    /// A token the back-end gave earlier, still to be resolved to a reference.
    pub pending_token: Option<&'a str>,
    /// Email recipients chosen by routing (the agency's address, or a rule's `also_email`).
    pub to: &'a [String],
    /// For a notice to a partner agency: what to tell it. The case is then already redacted to
    /// what the sharing agreement allows.
    pub notice: Option<&'a str>,
    /// The files that came with the case, for a connector that [sends files](Deliver::sends_files);
    /// empty otherwise.
    pub files: &'a [OutFile<'a>],
}

/// A file that came with the case (an uploaded photo).
#[derive(Debug, Clone, Copy)]
pub struct OutFile<'a> {
    /// The part it arrived in (`photo1`), which an Open311 upload reuses.
    pub part: &'a str,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub data: &'a [u8],
}

/// A delivery the other side accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The back-end's reference for the case, when it gives one.
    pub external_ref: Option<String>,
    /// Its raw answer, for diagnosis.
    pub response: Option<String>,
    /// What the connector changed to fit the back-end (a description shortened to its
    /// documented limit), recorded in the case's history.
    pub notes: Vec<String>,
}

/// Why an attempt did not end in acceptance; `token` is set when the back-end issued a token
/// that could not yet be resolved, so the next attempt polls it instead of sending again.
#[derive(Debug, Clone)]
pub struct Refused {
    pub error: ConnectorError,
    pub token: Option<String>,
}

impl From<ConnectorError> for Refused {
    fn from(error: ConnectorError) -> Self {
        Refused { error, token: None }
    }
}

/// A delivery connector.
///
/// Its outcome contract: `deliver` answers `Ok` only when the other side confirmed it took the
/// delivery; an error says whether retrying can help and whether the request may have arrived
/// (`ambiguous`). After an ambiguous attempt Junction never resends blindly: it asks
/// ([`Deliver::find`]) when [`Deliver::proof`] says the connector can, resends when the other
/// side de-duplicates on the idempotency key, and otherwise parks the delivery for a person.
#[async_trait::async_trait]
pub trait Deliver: Send + Sync {
    async fn deliver(&self, out: &Outbound<'_>) -> Result<Accepted, Refused>;

    /// Whether this connector sends the case's files, so they are read for it.
    fn sends_files(&self) -> bool {
        false
    }

    /// What this connector can prove about an attempt whose outcome is unknown.
    fn proof(&self) -> Proof {
        Proof::default()
    }

    /// Asks the other side whether `out` arrived; called only when [`Deliver::proof`] says it
    /// can ask. Never guesses: an answer that does not prove arrival or absence is
    /// [`Finding::Inconclusive`].
    async fn find(&self, _out: &Outbound<'_>) -> Finding {
        Finding::Inconclusive("this connector cannot ask the other side".into())
    }
}
