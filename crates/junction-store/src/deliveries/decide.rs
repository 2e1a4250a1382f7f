//! What a manager decides about a delivery: retry it, or say what became of an unknown outcome.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::DeliveryId;
use junction_domain::{Actor, DeliveryState};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::json;

use super::settle::{keep_references, sent_rows};
use super::{Delivery, load, truncate};
use crate::entity::{case_event, delivery};
use crate::{Store, StoreError, audit};

/// What a person decided about a delivery whose outcome could not be proved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// It arrived (the person checked the back-end), with the back-end's reference if it has one.
    Arrived { reference: Option<String> },
    /// It did not arrive: send it again.
    SendAgain,
}

/// A manager's retry of a dead or failed delivery: due now, with a fresh maximum age.
pub async fn retry(store: &Store, actor: &Actor, id: DeliveryId) -> Result<Delivery, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let d = load(&*txn, id).await?;
    if !matches!(d.state, DeliveryState::Dead | DeliveryState::Failed) {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is {}; only failed or dead deliveries can be retried",
            d.state.as_str()
        )));
    }
    if d.connector_id.is_empty() {
        return Err(StoreError::Conflict(format!(
            "delivery {id} has no connector to retry on; reroute the case instead"
        )));
    }
    let before = json!({"state": d.state.as_str(), "last_error": d.last_error});
    let pending = send_now(&*txn, actor, d, "retry", before, now).await?;
    txn.commit().await?;
    Ok(pending)
}

/// A person's decision about a delivery that is waiting for one (or still ambiguous): record it
/// as sent with the reference they found, or send it again with a fresh maximum age. Audited
/// with who decided; a delivery in any other state is a conflict.
pub async fn resolve(
    store: &Store,
    actor: &Actor,
    id: DeliveryId,
    resolution: &Resolution,
) -> Result<Delivery, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let d = load(&*txn, id).await?;
    if !matches!(
        d.state,
        DeliveryState::NeedsDecision | DeliveryState::Ambiguous
    ) {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is {}; only a delivery whose outcome is unknown can be resolved",
            d.state.as_str()
        )));
    }
    let before = json!({"state": d.state.as_str(), "last_error": d.last_error});
    let result = match resolution {
        Resolution::Arrived { reference } => {
            let how = format!("{} said it arrived", actor.subject);
            let (sent, event, reference_row, mut entry) =
                sent_rows(d, reference.as_deref(), Some(&how), &[], actor, now);
            if let Some(change) = entry.change.as_mut() {
                change.action = "resolve_arrived".into();
                change.before = before.clone();
            }
            delivery::Entity::update(delivery::ActiveModel {
                id: Set(id.0),
                state: Set(DeliveryState::Sent.as_str().to_string()),
                payload: Set(serde_json::to_string(&sent.payload).expect("a payload serialises")),
                queued_until: Set(None),
                lease_until: Set(None),
                lease_owner: Set(None),
                ambiguous_since: Set(None),
                checks: Set(0),
                last_error: Set(None),
                last_response: Set(Some(truncate(&how))),
                external_ref: Set(sent.external_ref.clone()),
                updated_at: Set(now),
                sent_at: Set(Some(now)),
                ..Default::default()
            })
            .exec(&*txn)
            .await?;
            case_event::Entity::insert(event)
                .exec_without_returning(&*txn)
                .await?;
            let mut entries = vec![entry];
            entries.extend(keep_references(&*txn, reference_row.into_iter().collect(), now).await?);
            audit::append(&*txn, &entries).await?;
            sent
        }
        Resolution::SendAgain => send_now(&*txn, actor, d, "send_again", before, now).await?,
    };
    txn.commit().await?;
    Ok(result)
}

/// Makes `d` pending and due `now`, with a fresh maximum age and nothing left to prove, and
/// audits it as `action` by `actor`: a manager's retry, or "send it again".
async fn send_now<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    d: Delivery,
    action: &str,
    before: serde_json::Value,
    now: DateTime<Utc>,
) -> Result<Delivery, StoreError> {
    delivery::Entity::update(delivery::ActiveModel {
        id: Set(d.id.0),
        state: Set(DeliveryState::Pending.as_str().to_string()),
        next_attempt_at: Set(now),
        queued_until: Set(None),
        first_attempt_at: Set(None),
        ambiguous_since: Set(None),
        checks: Set(0),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    audit::append(
        conn,
        &[actor.change(
            "delivery",
            &d.id.to_string(),
            action,
            before,
            json!({"state": "pending"}),
        )],
    )
    .await?;
    Ok(Delivery {
        state: DeliveryState::Pending,
        next_attempt_at: now,
        first_attempt_at: None,
        ambiguous_since: None,
        checks: 0,
        updated_at: now,
        ..d
    })
}
