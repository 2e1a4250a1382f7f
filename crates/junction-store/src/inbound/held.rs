//! Early updates: a back-end often reports on a case before the delivery that carried it has
//! recorded the back-end's reference (the update poll runs while the answer is still on its
//! way, or an unanswered attempt is still being proved). Such an update is held, with what it
//! was decided to mean, and applied in the transaction that records the reference.

use chrono::{DateTime, Utc};
use junction_domain::inbound::InboundUpdate;
use junction_domain::status_map::Target;
use junction_domain::{Actor, AuditEntry, Mapped};
use sea_orm::sea_query::{ExprTrait, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};

use crate::StoreError;
use crate::entity::held_update;

/// An update waiting for its case's reference.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldUpdate {
    pub connector_id: String,
    pub update: InboundUpdate,
    pub mapped: Mapped,
    pub received_at: DateTime<Utc>,
}

pub(super) async fn hold<C: ConnectionTrait>(
    conn: &C,
    connector_id: &str,
    update: &InboundUpdate,
    mapped: Mapped,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let row = held_update::ActiveModel {
        connector_id: Set(connector_id.to_string()),
        update_id: Set(update.update_id.clone()),
        external_ref: Set(update.external_ref.trim().to_string()),
        our_id: Set(update.our_id.clone()),
        body: Set(serde_json::to_string(update).expect("an update serialises")),
        mapped: Set(String::from(Target(mapped))),
        received_at: Set(now),
        ..Default::default()
    };
    held_update::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                held_update::Column::ConnectorId,
                held_update::Column::UpdateId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub(super) async fn is_held<C: ConnectionTrait>(
    conn: &C,
    connector_id: &str,
    update_id: &str,
) -> Result<bool, StoreError> {
    Ok(held_update::Entity::find()
        .filter(held_update::Column::ConnectorId.eq(connector_id))
        .filter(held_update::Column::UpdateId.eq(update_id))
        .one(conn)
        .await?
        .is_some())
}

fn from_row(row: held_update::Model) -> Result<HeldUpdate, StoreError> {
    let update =
        serde_json::from_str(&row.body).map_err(|e| StoreError::corrupt("held update", e))?;
    let mapped = Target::try_from(row.mapped)
        .map_err(|e| StoreError::corrupt("held update's status", e))?
        .0;
    Ok(HeldUpdate {
        connector_id: row.connector_id,
        update,
        mapped,
        received_at: row.received_at,
    })
}

/// The updates held for `connector_id`, oldest first.
pub async fn held_for(
    store: &crate::Store,
    connector_id: &str,
) -> Result<Vec<HeldUpdate>, StoreError> {
    held_update::Entity::find()
        .filter(held_update::Column::ConnectorId.eq(connector_id))
        .order_by_asc(held_update::Column::Id)
        .all(store.conn())
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Applies the updates held for references just recorded (`(case, connector, reference)`),
/// oldest first by the back-end's clock, and forgets them; returns their audit entries.
pub(crate) async fn release<C: ConnectionTrait>(
    conn: &C,
    refs: &[(String, String, String)],
    now: DateTime<Utc>,
) -> Result<Vec<AuditEntry>, StoreError> {
    if refs.is_empty() {
        return Ok(Vec::new());
    }
    // Almost always nothing is held: one indexed probe per batch of references says so.
    let mut connectors: Vec<&str> = refs.iter().map(|(_, c, _)| c.as_str()).collect();
    connectors.sort_unstable();
    connectors.dedup();
    let any_held = held_update::Entity::find()
        .filter(held_update::Column::ConnectorId.is_in(connectors))
        .one(conn)
        .await?
        .is_some();
    if !any_held {
        return Ok(Vec::new());
    }
    let mut cond = sea_orm::Condition::any();
    for (_, connector, reference) in refs {
        cond = cond.add(
            held_update::Column::ConnectorId
                .eq(connector.as_str())
                .and(held_update::Column::ExternalRef.eq(reference.as_str())),
        );
    }
    let rows = held_update::Entity::find().filter(cond).all(conn).await?;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let mut held: Vec<HeldUpdate> = rows.into_iter().map(from_row).collect::<Result<_, _>>()?;
    held.sort_by_key(|h| h.update.updated_at);
    let mut entries = Vec::with_capacity(held.len());
    for h in &held {
        let Some((case_id, _, _)) = refs
            .iter()
            .find(|(_, c, r)| *c == h.connector_id && *r == h.update.external_ref.trim())
        else {
            continue;
        };
        // Recorded meanwhile by another path (pushed as well as polled): applied once only.
        if super::recorded(conn, &h.connector_id, &h.update.update_id).await? {
            continue;
        }
        let actor = Actor::internal(&junction_domain::inbound::source_of(&h.connector_id));
        let (_, _, entry) = super::apply_to(
            conn,
            &actor,
            &h.connector_id,
            case_id,
            &h.update,
            h.mapped,
            now,
        )
        .await?;
        entries.push(entry);
    }
    held_update::Entity::delete_many()
        .filter(held_update::Column::Id.is_in(ids))
        .exec(conn)
        .await?;
    Ok(entries)
}

/// Applies the updates held for `connector_id` whose references are known by now (recorded by
/// a process that could not yet see them held); returns how many were applied.
pub async fn release_known(store: &crate::Store, connector_id: &str) -> Result<u64, StoreError> {
    let held = held_update::Entity::find()
        .filter(held_update::Column::ConnectorId.eq(connector_id))
        .all(store.conn())
        .await?;
    if held.is_empty() {
        return Ok(0);
    }
    let refs: Vec<String> = held.iter().map(|h| h.external_ref.clone()).collect();
    let known = crate::entity::external_ref::Entity::find()
        .filter(crate::entity::external_ref::Column::ConnectorId.eq(connector_id))
        .filter(crate::entity::external_ref::Column::ExternalId.is_in(refs))
        .all(store.conn())
        .await?;
    if known.is_empty() {
        return Ok(0);
    }
    let refs: Vec<(String, String, String)> = known
        .into_iter()
        .map(|r| (r.case_id, r.connector_id, r.external_id))
        .collect();
    let now = chrono::SubsecRound::trunc_subsecs(Utc::now(), 6);
    let txn = store.begin_write().await?;
    let entries = release(&*txn, &refs, now).await?;
    let applied = entries.len() as u64;
    crate::audit::append(&*txn, &entries).await?;
    txn.commit().await?;
    Ok(applied)
}
