//! Deliveries, connectors and attachments.

use async_graphql::{Context, Enum, ID, Object, SimpleObject};
use chrono::{DateTime, Utc};
use junction_domain as d;
use junction_store::{Store, deliveries};

use crate::error::ApiResult;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::DeliveryState")]
pub enum DeliveryState {
    Pending,
    Sending,
    Sent,
    Failed,
    Ambiguous,
    NeedsDecision,
    Dead,
    Cancelled,
}

/// What a person decided about a delivery whose outcome could not be proved.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeliveryResolution {
    /// It arrived: the back-end holds it.
    Arrived,
    /// It did not arrive: send it again.
    SendAgain,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "junction_domain::DeliveryKind")]
pub enum DeliveryKind {
    Case,
    AlsoEmail,
    PartnerNotice,
}

/// A connector's reference for a case.
#[derive(SimpleObject)]
pub struct ExternalRef {
    pub connector: String,
    pub external_id: String,
}

/// Sending one thing to one connector.
pub struct Delivery(pub deliveries::Delivery);

#[Object]
impl Delivery {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn case_id(&self) -> ID {
        ID(self.0.case_id.clone())
    }
    async fn connector(&self) -> &str {
        &self.0.connector_id
    }
    async fn agency_id(&self) -> &str {
        &self.0.agency_id
    }
    async fn kind(&self) -> DeliveryKind {
        self.0.kind.into()
    }
    async fn state(&self) -> DeliveryState {
        self.0.state.into()
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts as i32
    }
    /// When the next attempt (or check of an unknown outcome) is due.
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        (!self.0.state.is_final() && self.0.state != d::DeliveryState::NeedsDecision)
            .then_some(self.0.next_attempt_at)
    }
    /// Since when whether the last attempt arrived has been unknown, while it is.
    async fn ambiguous_since(&self) -> Option<DateTime<Utc>> {
        self.0.ambiguous_since
    }
    /// Inconclusive checks of that unknown outcome so far.
    async fn checks(&self) -> i32 {
        self.0.checks as i32
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    /// The back-end's raw answer to the last attempt, truncated.
    async fn last_response(&self) -> Option<&str> {
        self.0.last_response.as_deref()
    }
    async fn external_ref(&self) -> Option<&str> {
        self.0.external_ref.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn sent_at(&self) -> Option<DateTime<Utc>> {
        self.0.sent_at
    }
}

/// A connector and how its deliveries are going.
pub struct Connector {
    pub id: String,
    pub kind: String,
    pub paused: Option<deliveries::Pause>,
}

#[Object]
impl Connector {
    async fn id(&self) -> &str {
        &self.id
    }
    async fn kind(&self) -> &str {
        &self.kind
    }
    async fn paused(&self) -> bool {
        self.paused.is_some()
    }
    async fn paused_reason(&self) -> Option<&str> {
        self.paused.as_ref().map(|p| p.reason.as_str())
    }
    async fn paused_at(&self) -> Option<DateTime<Utc>> {
        self.paused.as_ref().map(|p| p.paused_at)
    }
    /// Delivery counts and the latest success and error.
    async fn health(&self, ctx: &Context<'_>) -> ApiResult<ConnectorHealth> {
        let store = ctx.data_unchecked::<Store>();
        let h = deliveries::health(store, &self.id).await?;
        Ok(ConnectorHealth {
            pending: h.pending as i64,
            failing: h.failing as i64,
            dead: h.dead as i64,
            sent: h.sent as i64,
            ambiguous: h.ambiguous as i64,
            needs_decision: h.needs_decision as i64,
            last_success: h.last_success,
            last_error: h.last_error,
            last_error_at: h.last_error_at,
        })
    }
}

#[derive(SimpleObject)]
pub struct ConnectorHealth {
    pub pending: i64,
    pub failing: i64,
    pub dead: i64,
    pub sent: i64,
    /// Waiting for the outcome of an unanswered attempt to be proved.
    pub ambiguous: i64,
    /// Parked: whether they arrived could not be proved, and a manager must decide
    /// (`resolveDelivery`).
    pub needs_decision: i64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// A file that came with a case.
pub struct Attachment(pub d::Attachment);

#[Object]
impl Attachment {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// The multipart part it arrived in (`photo1`, …).
    async fn part(&self) -> &str {
        &self.0.part
    }
    async fn file_name(&self) -> &str {
        &self.0.file_name
    }
    /// As declared by the sender.
    async fn content_type(&self) -> &str {
        &self.0.content_type
    }
    /// Bytes.
    async fn size(&self) -> i64 {
        self.0.size
    }
    /// SHA-256 of the bytes, hex.
    async fn sha256(&self) -> &str {
        &self.0.sha256
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    /// Where to download it (`GET`, bearer token as for the API).
    async fn url(&self) -> String {
        format!("/attachments/{}", self.0.id)
    }
}
