//! Due deliveries handed to the queue, and the guarded claim that starts one attempt.

use junction_domain::DeliveryId;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::DeliveryState;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement};

use super::{Delivery, from_row};
use crate::db::placeholder;
use crate::entity::delivery;
use crate::{Store, StoreError};

/// The states a delivery waits in for its next step, due at `next_attempt_at`.
pub(crate) const WAITING: &str = "'pending', 'failed', 'ambiguous'";

/// The condition that a delivery's connector and agency are not paused, as SQL on `d`.
const NOT_PAUSED: &str = "NOT EXISTS (SELECT 1 FROM pauses p WHERE \
     (p.target_type = 'connector' AND p.target_id = d.connector_id) OR \
     (p.target_type = 'agency' AND p.target_id = d.agency_id))";

/// Takes up to `limit` due deliveries that no queued job is expected to handle, and marks them
/// as queued until `now + hold`: the caller then hands each to the queue. A delivery whose
/// job is lost (a crash between queueing and running) is taken again once the hold expires.
///
/// Deliveries to the connectors in `ordered` go one at a time, oldest first: one is taken only
/// when no earlier delivery to its connector is pending, in flight, waiting to be retried or
/// to have its outcome proved. A dead delivery, or one parked for a person's decision, no
/// longer holds later ones back.
pub async fn take_for_queue(
    store: &Store,
    now: DateTime<Utc>,
    hold: Duration,
    limit: u64,
    ordered: &[String],
) -> Result<Vec<DeliveryId>, StoreError> {
    let backend = store.conn().get_database_backend();
    let p = |n| placeholder(backend, n);
    let in_order = if ordered.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = (0..ordered.len()).map(|i| p(3 + i)).collect();
        format!(
            " AND (d.connector_id NOT IN ({list}) OR NOT EXISTS (SELECT 1 FROM deliveries o \
             WHERE o.connector_id = d.connector_id AND o.id < d.id \
             AND o.state IN ({WAITING}, 'sending')))",
            list = list.join(", ")
        )
    };
    let sql = format!(
        "SELECT d.id AS id FROM deliveries d WHERE \
         d.state IN ({WAITING}) AND d.next_attempt_at <= {} \
         AND (d.queued_until IS NULL OR d.queued_until < {}) \
         AND {NOT_PAUSED}{in_order} ORDER BY d.id LIMIT {limit}",
        p(1),
        p(2)
    );
    let mut values: Vec<sea_orm::Value> = vec![now.into(), now.into()];
    values.extend(ordered.iter().map(|c| sea_orm::Value::from(c.clone())));
    let txn = store.begin_write().await?;
    let rows = txn
        .query_all_raw(Statement::from_sql_and_values(backend, sql, values))
        .await?;
    let ids: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get::<i64>("", "id"))
        .collect::<Result<_, _>>()?;
    if !ids.is_empty() {
        let until = now + chrono::Duration::from_std(hold).unwrap_or(chrono::Duration::minutes(5));
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::QueuedUntil,
                sea_orm::sea_query::Expr::value(Some(until)),
            )
            .filter(delivery::Column::Id.is_in(ids.clone()))
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;
    Ok(ids.into_iter().map(DeliveryId).collect())
}

/// Forgets every queued mark, so the next [`take_for_queue`] takes every due delivery: for a
/// start after a crash, when the queue may have lost jobs.
pub async fn forget_queued(store: &Store) -> Result<u64, StoreError> {
    let txn = store.begin_write().await?;
    let n = delivery::Entity::update_many()
        .col_expr(
            delivery::Column::QueuedUntil,
            sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery::Column::QueuedUntil.is_not_null())
        .exec(&*txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    Ok(n)
}

/// When the next delivery that is waiting (not paused) becomes due, if any.
pub async fn next_due_at(store: &Store) -> Result<Option<DateTime<Utc>>, StoreError> {
    let backend = store.conn().get_database_backend();
    let sql = format!(
        "SELECT MIN(CASE WHEN d.state = 'sending' THEN d.lease_until ELSE d.next_attempt_at END) AS t \
         FROM deliveries d WHERE d.state IN ({WAITING}, 'sending') AND {NOT_PAUSED}"
    );
    let row = store
        .conn()
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(row.and_then(|r| r.try_get::<Option<DateTime<Utc>>>("", "t").ok().flatten()))
}

/// Claims delivery `id` for one attempt by process `owner`, holding it for `lease`. Returns
/// `None` when it is not due, is paused, or another worker holds it; the claim itself is one
/// guarded update, so two workers can never both hold it.
pub async fn claim(
    store: &Store,
    owner: &str,
    id: DeliveryId,
    lease: Duration,
) -> Result<Option<Delivery>, StoreError> {
    Ok(claim_batch(store, owner, &[(id, lease)])
        .await?
        .pop()
        .flatten())
}

/// Claims several deliveries for process `owner` in one transaction (one commit for many
/// workers' claims): one guarded update per distinct lease, then one read of what was
/// claimed. A delivery held by a process that died is not claimed here: [`super::recover_orphans`]
/// first marks it ambiguous, so its next attempt proves what happened.
pub async fn claim_batch(
    store: &Store,
    owner: &str,
    claims: &[(DeliveryId, Duration)],
) -> Result<Vec<Option<Delivery>>, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let backend = txn.get_database_backend();
    let mut leases: Vec<Duration> = claims.iter().map(|(_, l)| *l).collect();
    leases.sort_unstable();
    leases.dedup();
    let mut claimed: std::collections::HashMap<DeliveryId, Delivery> =
        std::collections::HashMap::new();
    for lease in leases {
        let ids: Vec<i64> = claims
            .iter()
            .filter(|(_, l)| *l == lease)
            .map(|(id, _)| id.0)
            .collect();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let p = |n| placeholder(backend, n);
        // Placeholders in order of appearance: SQLite's `?` binds by position.
        let list: Vec<String> = (0..ids.len()).map(|i| p(6 + i)).collect();
        let sql = format!(
            "UPDATE deliveries SET state = 'sending', lease_until = {}, lease_owner = {}, \
             attempts = attempts + 1, first_attempt_at = COALESCE(first_attempt_at, {}), \
             updated_at = {} \
             WHERE state IN ({WAITING}) AND next_attempt_at <= {} \
             AND NOT EXISTS (SELECT 1 FROM pauses p WHERE \
               (p.target_type = 'connector' AND p.target_id = deliveries.connector_id) OR \
               (p.target_type = 'agency' AND p.target_id = deliveries.agency_id)) \
             AND id IN ({})",
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            list.join(", "),
        );
        let mut values: Vec<sea_orm::Value> = vec![
            until.into(),
            owner.into(),
            now.into(),
            now.into(),
            now.into(),
        ];
        values.extend(ids.iter().map(|id| sea_orm::Value::from(*id)));
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        // What this statement claimed carries exactly its lease.
        for row in delivery::Entity::find()
            .filter(delivery::Column::Id.is_in(ids))
            .filter(delivery::Column::State.eq(DeliveryState::Sending.as_str()))
            .filter(delivery::Column::LeaseUntil.eq(until))
            .filter(delivery::Column::LeaseOwner.eq(owner))
            .all(&*txn)
            .await?
        {
            let d = from_row(row)?;
            claimed.insert(d.id, d);
        }
    }
    txn.commit().await?;
    Ok(claims.iter().map(|(id, _)| claimed.remove(id)).collect())
}
