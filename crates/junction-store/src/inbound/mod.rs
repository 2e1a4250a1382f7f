//! Updates from back-ends applied to their cases: each matched to its case, de-duplicated on
//! (connector, update id), recorded in the case's history with its event and audit entry, and
//! moving the case's status only as [`junction_domain::inbound::effect`] decides. An update for
//! a reference not yet known is held (see [`held`]) and applied when the reference arrives.
//!
//! A batch of updates is one transaction: a feed of a hundred thousand rows is a few hundred
//! commits, and a process killed mid-batch leaves either all of a batch or none of it.

mod held;

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::inbound::{Effect, InboundUpdate, effect, source_of};
use junction_domain::{Actor, AuditEntry, CaseEventKind, Mapped};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde::Serialize;
use serde_json::json;

pub(crate) use held::release;
pub use held::{HeldUpdate, held_for, release_known};

use crate::cases::{bump, insert_event, load_for_update};
use crate::entity::{case_update, delivery, external_ref};
use crate::updates::{NewUpdate, insert_row};
use crate::{Store, StoreError, audit};

/// What became of one inbound update.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded on case `case_id` as update `update`, with this effect on its status.
    Applied {
        case_id: String,
        update: i64,
        effect: Effect,
    },
    /// Already seen from this connector: nothing changed.
    Repeat,
    /// Its case's reference is not known yet: held until it is.
    Held,
}

/// How many updates of a batch came to what.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub applied: u64,
    /// Of those applied, how many moved their case's status.
    pub moved: u64,
    /// Of those applied, how many were older than their case's last status change.
    pub out_of_order: u64,
    pub repeats: u64,
    pub held: u64,
}

impl Counts {
    pub fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Applied { effect, .. } => {
                self.applied += 1;
                match effect {
                    Effect::Moves(_) => self.moved += 1,
                    Effect::OutOfOrder(_) => self.out_of_order += 1,
                    Effect::Note => {}
                }
            }
            Outcome::Repeat => self.repeats += 1,
            Outcome::Held => self.held += 1,
        }
    }
}

/// Applies `updates` from connector `connector_id`, each with what its status means here, in
/// one transaction; the outcomes are in the same order.
pub async fn apply_batch(
    store: &Store,
    connector_id: &str,
    updates: &[(InboundUpdate, Mapped)],
) -> Result<Vec<Outcome>, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let actor = Actor::internal(&source_of(connector_id));
    let txn = store.begin_write().await?;
    let mut outcomes = Vec::with_capacity(updates.len());
    let mut entries = Vec::new();
    for (update, mapped) in updates {
        if seen(&*txn, connector_id, &update.update_id).await? {
            outcomes.push(Outcome::Repeat);
            continue;
        }
        let outcome = match find_case(&*txn, connector_id, update).await? {
            Some(case_id) => {
                let (effect, id, entry) =
                    apply_to(&*txn, &actor, connector_id, &case_id, update, *mapped, now).await?;
                entries.push(entry);
                Outcome::Applied {
                    case_id,
                    update: id,
                    effect,
                }
            }
            None => {
                held::hold(&*txn, connector_id, update, *mapped, now).await?;
                Outcome::Held
            }
        };
        outcomes.push(outcome);
    }
    audit::append(&*txn, &entries).await?;
    txn.commit().await?;
    Ok(outcomes)
}

/// Whether this connector's update `update_id` was recorded or held already.
async fn seen<C: ConnectionTrait>(
    conn: &C,
    connector_id: &str,
    update_id: &str,
) -> Result<bool, StoreError> {
    Ok(recorded(conn, connector_id, update_id).await?
        || held::is_held(conn, connector_id, update_id).await?)
}

/// Whether this connector's update `update_id` is in a case's history.
async fn recorded<C: ConnectionTrait>(
    conn: &C,
    connector_id: &str,
    update_id: &str,
) -> Result<bool, StoreError> {
    Ok(case_update::Entity::find()
        .filter(case_update::Column::Source.eq(source_of(connector_id)))
        .filter(case_update::Column::SourceUpdateId.eq(update_id))
        .one(conn)
        .await?
        .is_some())
}

/// The case an update is about: by our id where the back-end echoes it and it names a case
/// this connector was sent, else by this connector's reference for it. A back-end never
/// reaches a case it was not sent.
async fn find_case<C: ConnectionTrait>(
    conn: &C,
    connector_id: &str,
    update: &InboundUpdate,
) -> Result<Option<String>, StoreError> {
    if let Some(our_id) = update.our_id.as_deref().filter(|s| !s.trim().is_empty()) {
        let sent_here = delivery::Entity::find()
            .filter(delivery::Column::CaseId.eq(our_id.trim()))
            .filter(delivery::Column::ConnectorId.eq(connector_id))
            .one(conn)
            .await?;
        if let Some(d) = sent_here {
            return Ok(Some(d.case_id));
        }
    }
    Ok(external_ref::Entity::find()
        .filter(external_ref::Column::ConnectorId.eq(connector_id))
        .filter(external_ref::Column::ExternalId.eq(update.external_ref.trim()))
        .one(conn)
        .await?
        .map(|r| r.case_id))
}

/// Records `update` on case `case_id` and moves its status as the rule decides; returns the
/// effect, the stored update's id and the audit entry to append with the transaction.
pub(crate) async fn apply_to<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    connector_id: &str,
    case_id: &str,
    update: &InboundUpdate,
    mapped: Mapped,
    now: DateTime<Utc>,
) -> Result<(Effect, i64, AuditEntry), StoreError> {
    let mut case = load_for_update(conn, case_id).await?;
    let at = update.updated_at.trunc_subsecs(0);
    let from = case.status;
    let effect = effect(mapped, case.status, case.status_at, at);
    if let Effect::Moves(to) = effect {
        bump(conn, &mut case, now, Some((to, at))).await?;
    }
    let asked = match mapped {
        Mapped::Status(s) => Some(s),
        Mapped::NoteOnly => None,
    };
    let new = NewUpdate {
        source: source_of(connector_id),
        source_update_id: Some(update.update_id.clone()),
        status: asked,
        external_status_code: update.external_status_code.clone(),
        description: update.description.clone(),
        media_urls: update.media_urls.clone(),
        updated_at: Some(at),
        ..Default::default()
    };
    let row = insert_row(conn, &case.id, &new, case.status, at, now).await?;
    let data = json!({
        "update": row.id,
        "source": new.source,
        "source_update_id": update.update_id,
        "backend_status": update.status,
        "status": asked.map(|s| s.as_str()),
        "status_applied": matches!(effect, Effect::Moves(_)),
        "out_of_order": matches!(effect, Effect::OutOfOrder(_)),
        "external_status_code": update.external_status_code,
    });
    let mut event_data = data.clone();
    event_data["description"] = update.description.clone().into();
    insert_event(
        conn,
        &case.id,
        CaseEventKind::UpdateReceived,
        actor,
        now,
        event_data,
    )
    .await?;
    let entry = actor.change(
        "case",
        &case.id,
        "record_update",
        json!({"status": from.as_str()}),
        data,
    );
    Ok((effect, row.id, entry))
}
