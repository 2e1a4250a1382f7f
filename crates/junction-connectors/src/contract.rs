//! The connector contract: what every delivery connector is given and what it answers.
//! `docs/connectors/SPEC.md` states it in prose; the conformance suite checks it.

use junction_domain::{Case, Route};

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
    /// The previous attempt may have reached the back-end: ask before sending again.
    pub after_ambiguous: bool,
    /// A token the back-end gave earlier, still to be resolved to a reference.
    pub pending_token: Option<&'a str>,
    /// Email recipients chosen by routing (the agency's address, or a rule's `also_email`).
    pub to: &'a [String],
    /// For a notice to a partner agency: what to tell it. The case is then already redacted to
    /// what the sharing agreement allows.
    pub notice: Option<&'a str>,
}

/// A delivery the other side accepted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accepted {
    /// The back-end's reference for the case, when it gives one.
    pub external_ref: Option<String>,
    /// Its raw answer, for diagnosis.
    pub response: Option<String>,
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
#[async_trait::async_trait]
pub trait Deliver: Send + Sync {
    async fn deliver(&self, out: &Outbound<'_>) -> Result<Accepted, Refused>;
}
