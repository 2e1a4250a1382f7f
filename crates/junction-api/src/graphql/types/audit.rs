//! The audit log, as `auditLog` pages it.

use async_graphql::{Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use junction_store::audit::StoredAudit;

use super::PageInfo;

/// One audit record.
pub struct AuditRecord(pub StoredAudit);

#[Object]
impl AuditRecord {
    async fn seq(&self) -> i64 {
        self.0.link.seq
    }
    async fn at(&self) -> DateTime<Utc> {
        self.0.entry.at
    }
    async fn actor(&self) -> &str {
        &self.0.entry.actor
    }
    async fn agency(&self) -> Option<&str> {
        self.0.entry.agency.as_deref()
    }
    async fn roles(&self) -> &[String] {
        &self.0.entry.roles
    }
    async fn request_id(&self) -> Option<&str> {
        self.0.entry.request_id.as_deref()
    }
    async fn client_addr(&self) -> Option<&str> {
        self.0.entry.client_addr.as_deref()
    }
    /// `operation` for an API request, `change` for a state change.
    async fn kind(&self) -> &str {
        if self.0.entry.change.is_some() {
            "change"
        } else {
            "operation"
        }
    }
    async fn operation_name(&self) -> Option<&str> {
        self.0
            .entry
            .operation
            .as_ref()
            .and_then(|o| o.operation_name.as_deref())
    }
    async fn operation_type(&self) -> Option<&str> {
        self.0
            .entry
            .operation
            .as_ref()
            .map(|o| o.operation_type.as_str())
    }
    async fn variables_hash(&self) -> Option<&str> {
        self.0
            .entry
            .operation
            .as_ref()
            .and_then(|o| o.variables_hash.as_deref())
    }
    async fn outcome(&self) -> Option<&str> {
        self.0.entry.operation.as_ref().map(|o| o.outcome.as_str())
    }
    async fn error_code(&self) -> Option<&str> {
        self.0
            .entry
            .operation
            .as_ref()
            .and_then(|o| o.error_code.as_deref())
    }
    async fn duration_us(&self) -> Option<i64> {
        self.0.entry.operation.as_ref().map(|o| o.duration_us)
    }
    async fn object_type(&self) -> Option<&str> {
        self.0.entry.change.as_ref().map(|c| c.object_type.as_str())
    }
    async fn object_id(&self) -> Option<&str> {
        self.0.entry.change.as_ref().map(|c| c.object_id.as_str())
    }
    async fn action(&self) -> Option<&str> {
        self.0.entry.change.as_ref().map(|c| c.action.as_str())
    }
    async fn before(&self) -> Option<Json<serde_json::Value>> {
        self.0.entry.change.as_ref().map(|c| Json(c.before.clone()))
    }
    async fn after(&self) -> Option<Json<serde_json::Value>> {
        self.0.entry.change.as_ref().map(|c| Json(c.after.clone()))
    }
    async fn prev_hash(&self) -> &str {
        &self.0.link.prev_hash
    }
    async fn hash(&self) -> &str {
        &self.0.link.hash
    }
}

#[derive(SimpleObject)]
pub struct AuditEdge {
    pub cursor: String,
    pub node: AuditRecord,
}

#[derive(SimpleObject)]
pub struct AuditConnection {
    pub edges: Vec<AuditEdge>,
    pub page_info: PageInfo,
}
