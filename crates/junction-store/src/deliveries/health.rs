//! A connector's delivery health and the references connectors gave a case.

use chrono::{DateTime, Utc};
use junction_domain::DeliveryState;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};

use crate::db::placeholder;
use crate::entity::{delivery, external_ref};
use crate::{Store, StoreError};

/// A connector's delivery health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub pending: u64,
    pub failing: u64,
    pub dead: u64,
    pub sent: u64,
    /// Waiting for the outcome of an unanswered attempt to be proved.
    pub ambiguous: u64,
    /// Parked: whether they arrived could not be proved, and a person must decide.
    pub needs_decision: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
}

/// How many of `connector_id`'s deliveries are in `state` (one indexed count).
pub async fn count(
    store: &Store,
    connector_id: &str,
    state: DeliveryState,
) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(delivery::Entity::find()
        .filter(delivery::Column::ConnectorId.eq(connector_id))
        .filter(delivery::Column::State.eq(state.as_str()))
        .count(store.conn())
        .await?)
}

/// Delivery health of `connector_id`.
pub async fn health(store: &Store, connector_id: &str) -> Result<Health, StoreError> {
    let backend = store.conn().get_database_backend();
    let sql = format!(
        "SELECT state, COUNT(*) AS n FROM deliveries WHERE connector_id = {} GROUP BY state",
        placeholder(backend, 1)
    );
    let rows = store
        .conn()
        .query_all_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [connector_id.into()],
        ))
        .await?;
    let mut h = Health::default();
    for r in rows {
        let state: String = r.try_get("", "state")?;
        let n = r.try_get::<i64>("", "n")?.max(0) as u64;
        match state.as_str() {
            "pending" | "sending" => h.pending += n,
            "failed" => h.failing += n,
            "dead" => h.dead += n,
            "sent" => h.sent += n,
            "ambiguous" => h.ambiguous += n,
            "needs_decision" => h.needs_decision += n,
            _ => {}
        }
    }
    h.last_success = delivery::Entity::find()
        .filter(delivery::Column::ConnectorId.eq(connector_id))
        .filter(delivery::Column::State.eq("sent"))
        .order_by_desc(delivery::Column::SentAt)
        .one(store.conn())
        .await?
        .and_then(|d| d.sent_at);
    if let Some(d) = delivery::Entity::find()
        .filter(delivery::Column::ConnectorId.eq(connector_id))
        .filter(delivery::Column::LastError.is_not_null())
        .order_by_desc(delivery::Column::UpdatedAt)
        .one(store.conn())
        .await?
    {
        h.last_error = d.last_error;
        h.last_error_at = Some(d.updated_at);
    }
    Ok(h)
}

/// The external reference each connector gave a case.
pub async fn external_refs(
    store: &Store,
    case_id: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    Ok(external_ref::Entity::find()
        .filter(external_ref::Column::CaseId.eq(case_id))
        .order_by_asc(external_ref::Column::CreatedAt)
        .all(store.conn())
        .await?
        .into_iter()
        .map(|r| (r.connector_id, r.external_id))
        .collect())
}
