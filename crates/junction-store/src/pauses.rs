//! Pauses: a connector or an agency whose deliveries are held, in place and in order, until
//! it is resumed. A pause survives restarts and configuration changes; pausing and resuming
//! are audited with who did it and why.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::Actor;
use sea_orm::{ActiveValue::Set, EntityTrait};
use serde_json::json;

use crate::entity::pause;
use crate::{Store, StoreError, audit};

/// What can be paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseTarget {
    Connector,
    Agency,
}

impl PauseTarget {
    pub fn as_str(self) -> &'static str {
        junction_domain::wire_name::wire_name(&self)
    }
}

/// A pause in force.
#[derive(Debug, Clone, PartialEq)]
pub struct Pause {
    pub target: PauseTarget,
    pub id: String,
    pub paused_by: String,
    pub reason: String,
    pub paused_at: DateTime<Utc>,
}

/// Holds every delivery to `id`. Pausing what is already paused changes nothing.
pub async fn pause(
    store: &Store,
    actor: &Actor,
    target: PauseTarget,
    id: &str,
    reason: &str,
) -> Result<Pause, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let existing = pause::Entity::find_by_id((target.as_str().to_string(), id.to_string()))
        .one(&*txn)
        .await?;
    if let Some(p) = existing {
        return Ok(Pause {
            target,
            id: p.target_id,
            paused_by: p.paused_by,
            reason: p.reason,
            paused_at: p.paused_at,
        });
    }
    pause::Entity::insert(pause::ActiveModel {
        target_type: Set(target.as_str().to_string()),
        target_id: Set(id.to_string()),
        paused_by: Set(actor.subject.clone()),
        reason: Set(reason.to_string()),
        paused_at: Set(now),
    })
    .exec_without_returning(&*txn)
    .await?;
    audit::append(
        &*txn,
        &[actor.change(
            target.as_str(),
            id,
            "pause",
            json!({"paused": false}),
            json!({"paused": true, "reason": reason}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(Pause {
        target,
        id: id.to_string(),
        paused_by: actor.subject.clone(),
        reason: reason.to_string(),
        paused_at: now,
    })
}

/// Releases a pause; returns whether there was one.
pub async fn resume(
    store: &Store,
    actor: &Actor,
    target: PauseTarget,
    id: &str,
) -> Result<bool, StoreError> {
    let txn = store.begin_write().await?;
    let removed = pause::Entity::delete_by_id((target.as_str().to_string(), id.to_string()))
        .exec(&*txn)
        .await?
        .rows_affected;
    if removed == 0 {
        return Ok(false);
    }
    audit::append(
        &*txn,
        &[actor.change(
            target.as_str(),
            id,
            "resume",
            json!({"paused": true}),
            json!({"paused": false}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Every pause in force.
pub async fn pauses(store: &Store) -> Result<Vec<Pause>, StoreError> {
    let rows = pause::Entity::find().all(store.conn()).await?;
    Ok(rows
        .into_iter()
        .map(|p| Pause {
            target: if p.target_type == "agency" {
                PauseTarget::Agency
            } else {
                PauseTarget::Connector
            },
            id: p.target_id,
            paused_by: p.paused_by,
            reason: p.reason,
            paused_at: p.paused_at,
        })
        .collect())
}
