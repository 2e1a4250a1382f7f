//! A case's shares and history events as GraphQL shows them.

use async_graphql::{ID, Json, Object};
use chrono::{DateTime, Utc};
use junction_domain as d;
use junction_store::sharing as store_sharing;

use super::*;

/// One share of a case with a partner agency.
pub struct CaseShare(pub store_sharing::ShareRecord);

#[Object]
impl CaseShare {
    async fn agency(&self) -> &str {
        &self.0.agency_id
    }
    async fn agreement(&self) -> &str {
        &self.0.agreement_id
    }
    /// The sharing rule that made the share, if a rule did.
    async fn rule(&self) -> Option<&str> {
        self.0.rule.as_deref()
    }
    async fn reason(&self) -> &str {
        &self.0.reason
    }
    async fn shared_by(&self) -> &str {
        &self.0.shared_by
    }
    async fn shared_at(&self) -> DateTime<Utc> {
        self.0.shared_at
    }
    async fn unshared_at(&self) -> Option<DateTime<Utc>> {
        self.0.unshared_at
    }
    async fn unshared_by(&self) -> Option<&str> {
        self.0.unshared_by.as_deref()
    }
    async fn unshare_reason(&self) -> Option<&str> {
        self.0.unshare_reason.as_deref()
    }
    async fn live(&self) -> bool {
        self.0.unshared_at.is_none()
    }
}

/// One entry in a case's history.
pub struct CaseEvent {
    pub event: d::CaseEvent,
    /// What the caller's agreement hid from `data`.
    pub redacted: Vec<String>,
}

#[Object]
impl CaseEvent {
    async fn id(&self) -> ID {
        ID(self.event.id.to_string())
    }
    async fn kind(&self) -> CaseEventKind {
        self.event.kind.into()
    }
    async fn actor(&self) -> &str {
        &self.event.actor
    }
    async fn at(&self) -> DateTime<Utc> {
        self.event.at
    }
    /// Kind-specific detail, e.g. `{"from": "open", "to": "fixed"}` or `{"note": "…"}`;
    /// hidden values are null.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.event.data.clone())
    }
    /// Attributes hidden from `data` by the caller's sharing agreement (`notes`, `updates`).
    async fn redacted(&self) -> &[String] {
        &self.redacted
    }
}
