//! Deliveries: created with their case, claimed one attempt at a time, and settled as sent,
//! failed (retry at T), ambiguous (prove what happened first), needing a person's decision, or
//! dead. Pauses hold a connector's or an agency's deliveries in place.
//!
//! The retry schedule lives here, in the delivery row (attempts, next attempt, last error), not
//! in the queue: a restart, a crash or a lost job forgets nothing, and the reconciler finds
//! every delivery that is due and has no live job. A claim names the process holding it, so a
//! process that dies leaves deliveries that are known to be ambiguous at once ([`orphans`]).

mod create;
mod decide;
mod failure;
mod health;
mod orphans;
mod queue;
mod settle;

pub(crate) use create::{cancel_unsent, insert_for_route, insert_planned, new_row};
pub use decide::{Resolution, resolve, retry};
pub use health::{Health, count, external_refs, health};
pub use orphans::recover_orphans;
pub use queue::{claim, claim_batch, forget_queued, next_due_at, take_for_queue};
pub use settle::{Failure, Settle, fail, settle_batch, succeed};

use chrono::{DateTime, Utc};
use junction_domain::{DeliveryId, DeliveryKind, DeliveryPayload, DeliveryState};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::entity::delivery;
use crate::{Store, StoreError};

pub use crate::pauses::{Pause, PauseTarget, pause, pauses, resume};

/// Longest error or raw answer kept on a delivery, in bytes.
pub const MAX_KEPT_BYTES: usize = 4_096;

/// One delivery, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: DeliveryId,
    pub case_id: String,
    pub connector_id: String,
    pub agency_id: String,
    pub kind: DeliveryKind,
    pub state: DeliveryState,
    pub idempotency_key: String,
    pub attempts: u32,
    pub first_attempt_at: Option<DateTime<Utc>>,
    pub next_attempt_at: DateTime<Utc>,
    pub last_error: Option<String>,
    /// The back-end's raw answer to the last attempt, truncated, for diagnosis.
    pub last_response: Option<String>,
    pub external_ref: Option<String>,
    /// What the delivery carries beyond the case.
    pub payload: DeliveryPayload,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// Since when whether the last attempt arrived has been unknown, while it is.
    pub ambiguous_since: Option<DateTime<Utc>>,
    /// Inconclusive checks of that unknown outcome so far.
    pub checks: u32,
    /// The process holding the current claim.
    pub lease_owner: Option<String>,
}

pub(crate) fn from_row(row: delivery::Model) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        kind: DeliveryKind::parse(&row.kind)
            .ok_or_else(|| StoreError::corrupt("delivery kind", &row.kind))?,
        state: DeliveryState::parse(&row.state)
            .ok_or_else(|| StoreError::corrupt("delivery state", &row.state))?,
        payload: serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::corrupt("delivery payload", e))?,
        id: DeliveryId(row.id),
        case_id: row.case_id,
        connector_id: row.connector_id,
        agency_id: row.agency_id,
        idempotency_key: row.idempotency_key,
        attempts: row.attempts.max(0) as u32,
        first_attempt_at: row.first_attempt_at,
        next_attempt_at: row.next_attempt_at,
        last_error: row.last_error,
        last_response: row.last_response,
        external_ref: row.external_ref,
        created_at: row.created_at,
        updated_at: row.updated_at,
        sent_at: row.sent_at,
        ambiguous_since: row.ambiguous_since,
        checks: row.checks.max(0) as u32,
        lease_owner: row.lease_owner,
    })
}

/// Cuts `text` to at most [`MAX_KEPT_BYTES`] on a character boundary.
pub fn truncate(text: &str) -> String {
    if text.len() <= MAX_KEPT_BYTES {
        return text.to_string();
    }
    let mut end = MAX_KEPT_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes in all]", &text[..end], text.len())
}

/// One delivery.
pub async fn get(store: &Store, id: DeliveryId) -> Result<Option<Delivery>, StoreError> {
    delivery::Entity::find_by_id(id.0)
        .one(store.conn())
        .await?
        .map(from_row)
        .transpose()
}

/// A case's deliveries, oldest first.
pub async fn for_case(store: &Store, case_id: &str) -> Result<Vec<Delivery>, StoreError> {
    delivery::Entity::find()
        .filter(delivery::Column::CaseId.eq(case_id))
        .order_by_asc(delivery::Column::Id)
        .all(store.conn())
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

pub(crate) async fn load<C: ConnectionTrait>(
    conn: &C,
    id: DeliveryId,
) -> Result<Delivery, StoreError> {
    let mut q = delivery::Entity::find_by_id(id.0);
    if conn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    let row = q.one(conn).await?.ok_or_else(|| StoreError::NotFound {
        kind: "delivery",
        id: id.to_string(),
    })?;
    from_row(row)
}

/// A uniform draw in `[0, 1)` for jitter.
pub(crate) fn rand_unit() -> f64 {
    use rand::Rng;
    rand::rng().random::<f64>()
}
