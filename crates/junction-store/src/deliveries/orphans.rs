//! Deliveries orphaned mid-attempt: held by a process that is gone, or whose lease lapsed. The
//! attempt may have reached the other side, so each becomes ambiguous at once, due now: its
//! next step proves what happened before anything is sent again.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::DeliveryId;
use junction_domain::{Actor, DeliveryState};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

use crate::db::placeholder;
use crate::{Store, StoreError, audit};

/// Marks ambiguous every `sending` delivery not held by one of the `live` processes, or whose
/// lease lapsed before `now`; returns their ids. Each change is audited.
pub async fn recover_orphans(
    store: &Store,
    live: &[String],
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryId>, StoreError> {
    let now = now.trunc_subsecs(6);
    let backend = store.conn().get_database_backend();
    let p = |n| placeholder(backend, n);
    let owners: Vec<String> = (0..live.len()).map(|i| p(2 + i)).collect();
    let not_held_by_live = if owners.is_empty() {
        String::from(" OR TRUE")
    } else {
        format!(
            " OR lease_owner IS NULL OR lease_owner NOT IN ({})",
            owners.join(", ")
        )
    };
    let lock = if backend == DbBackend::Postgres {
        " FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    let select = format!(
        "SELECT id, lease_owner FROM deliveries WHERE state = 'sending' \
         AND (lease_until IS NULL OR lease_until < {}{not_held_by_live}) ORDER BY id{lock}",
        p(1)
    );
    let mut values: Vec<sea_orm::Value> = vec![now.into()];
    values.extend(live.iter().map(|o| sea_orm::Value::from(o.clone())));
    // A plain read first: most of the time there is nothing to recover, and no write lock is
    // taken for it.
    let statement = Statement::from_sql_and_values(backend, select, values);
    if store
        .conn()
        .query_all_raw(statement.clone())
        .await?
        .is_empty()
    {
        return Ok(Vec::new());
    }
    let txn = store.begin_write().await?;
    let rows = txn.query_all_raw(statement).await?;
    let mut orphans = Vec::with_capacity(rows.len());
    for r in &rows {
        orphans.push((
            r.try_get::<i64>("", "id")?,
            r.try_get::<Option<String>>("", "lease_owner")?,
        ));
    }
    if orphans.is_empty() {
        txn.commit().await?;
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = orphans.iter().map(|(id, _)| *id).collect();
    for chunk in ids.chunks(500) {
        let list: Vec<String> = (0..chunk.len()).map(|i| p(4 + i)).collect();
        let sql = format!(
            "UPDATE deliveries SET state = 'ambiguous', \
             ambiguous_since = COALESCE(ambiguous_since, {}), next_attempt_at = {}, \
             lease_until = NULL, lease_owner = NULL, queued_until = NULL, \
             last_error = 'the process sending it stopped before an answer came', updated_at = {} \
             WHERE state = 'sending' AND id IN ({})",
            p(1),
            p(2),
            p(3),
            list.join(", ")
        );
        let mut values: Vec<sea_orm::Value> = vec![now.into(), now.into(), now.into()];
        values.extend(chunk.iter().map(|id| sea_orm::Value::from(*id)));
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    let actor = Actor::internal("delivery");
    let entries: Vec<_> = orphans
        .iter()
        .map(|(id, owner)| {
            actor.change(
                "delivery",
                &id.to_string(),
                "orphaned",
                json!({"state": DeliveryState::Sending.as_str(), "lease_owner": owner}),
                json!({"state": DeliveryState::Ambiguous.as_str()}),
            )
        })
        .collect();
    audit::append(&*txn, &entries).await?;
    txn.commit().await?;
    Ok(ids.into_iter().map(DeliveryId).collect())
}
