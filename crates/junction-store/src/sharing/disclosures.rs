//! The disclosure log: what partners were shown of a case's personal data.

use chrono::{DateTime, Utc};
use junction_domain::AuditDisclosure;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};

use crate::entity::audit_log;
use crate::{Store, StoreError};

/// One disclosure, as the audit log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DisclosureRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub request_id: Option<String>,
    pub disclosure: AuditDisclosure,
}

/// Every disclosure of a case's personal or sensitive values to a partner, oldest first.
pub async fn disclosures(
    store: &Store,
    case_id: &str,
) -> Result<Vec<DisclosureRecord>, StoreError> {
    audit_log::Entity::find()
        .filter(audit_log::Column::Kind.eq("disclosure"))
        .filter(audit_log::Column::ObjectType.eq("case"))
        .filter(audit_log::Column::ObjectId.eq(case_id))
        .order_by_asc(audit_log::Column::Seq)
        .all(store.conn())
        .await?
        .into_iter()
        .map(|m| {
            let disclosure = serde_json::from_str(m.disclosure.as_deref().unwrap_or("null"))
                .map_err(|e| StoreError::corrupt("audit disclosure", e))?;
            Ok(DisclosureRecord {
                seq: m.seq,
                at: m.at,
                actor: m.actor,
                request_id: m.request_id,
                disclosure,
            })
        })
        .collect()
}
