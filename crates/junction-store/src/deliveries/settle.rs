//! Recording what an attempt came to: sent, failed, unknown, or parked for a person.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::DeliveryId;
use junction_domain::{Actor, CaseEventKind, DeliveryKind, DeliveryState, RetryPolicy};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Statement,
};
use serde_json::{Value, json};

use super::failure::{Unsent, unsent_in};
use super::{Delivery, from_row, load, truncate};
use crate::db::placeholder;
use crate::entity::{case_event, delivery, external_ref};
use crate::{Store, StoreError, audit};

/// How an attempt failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    /// The back-end's raw answer, if there was one.
    pub response: Option<String>,
    /// Retrying cannot help (the back-end refused the content).
    pub permanent: bool,
    /// Whether the delivery arrived is unknown after this attempt (no answer came, or an
    /// earlier unanswered attempt was not proved absent): the next step proves what happened
    /// before anything is sent again.
    pub ambiguous: bool,
    /// A token the back-end issued that is still to be resolved.
    pub token: Option<String>,
}

/// The outcome of one attempt, to be recorded.
#[derive(Debug, Clone)]
pub enum Settle {
    Sent {
        id: DeliveryId,
        external_ref: Option<String>,
        response: Option<String>,
        /// How it is known to have arrived, when not from the answer to a send (found by asking
        /// the back-end after an unanswered attempt).
        found: Option<String>,
        /// What the connector changed to fit the back-end, for the case's history.
        notes: Vec<String>,
    },
    Failed {
        id: DeliveryId,
        failure: Failure,
        policy: RetryPolicy,
    },
    /// Asking whether an unanswered attempt arrived was inconclusive: ask again later.
    Unproved {
        id: DeliveryId,
        why: String,
        policy: RetryPolicy,
    },
    /// Whether it arrived cannot be proved: park it for a person to decide.
    Park { id: DeliveryId, why: String },
}

impl Settle {
    pub fn id(&self) -> DeliveryId {
        match self {
            Settle::Sent { id, .. }
            | Settle::Failed { id, .. }
            | Settle::Unproved { id, .. }
            | Settle::Park { id, .. } => *id,
        }
    }
}

/// Records a successful attempt: the delivery is sent, and the connector's reference for the
/// case is kept (the first one a connector gives a case is never overwritten).
pub async fn succeed(
    store: &Store,
    id: DeliveryId,
    external_ref: Option<&str>,
    response: Option<&str>,
) -> Result<Delivery, StoreError> {
    let settle = Settle::Sent {
        id,
        external_ref: external_ref.map(str::to_string),
        response: response.map(str::to_string),
        found: None,
        notes: Vec::new(),
    };
    settle_batch(store, None, &[settle])
        .await?
        .pop()
        .expect("one outcome")
}

/// Records a failed attempt: a transient failure is retried on `policy`'s schedule until the
/// delivery is older than its maximum age; a permanent one goes dead at once. Returns the
/// delivery as it now stands.
pub async fn fail(
    store: &Store,
    id: DeliveryId,
    failure: &Failure,
    policy: &RetryPolicy,
) -> Result<Delivery, StoreError> {
    let settle = Settle::Failed {
        id,
        failure: failure.clone(),
        policy: *policy,
    };
    settle_batch(store, None, &[settle])
        .await?
        .pop()
        .expect("one outcome")
}

/// Records several outcomes in one transaction, with their events and audit entries. An
/// outcome for a delivery that is no longer `sending`, or (with `owner`) no longer held by that
/// process, is refused on its own (a conflict) without failing the others: a process taken
/// for dead never overwrites what another has since decided.
pub async fn settle_batch(
    store: &Store,
    owner: Option<&str>,
    outcomes: &[Settle],
) -> Result<Vec<Result<Delivery, StoreError>>, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    // One read for every delivery in the batch; successes then cost one update each, and
    // their events and references are inserted together.
    let mut loaded = load_batch(&*txn, outcomes).await?;
    let mut results = Vec::with_capacity(outcomes.len());
    let mut entries = Vec::new();
    let mut events = Vec::new();
    let mut refs = Vec::new();
    // Successes: (id, payload, response, external reference), written in one statement.
    let mut sent: Vec<(DeliveryId, String, Option<String>, Option<String>)> = Vec::new();
    let actor = Actor::internal("delivery");
    for outcome in outcomes {
        let id = outcome.id();
        let held = held(loaded.remove(&id), id, owner);
        let result = match (outcome, held) {
            (_, Err(e)) => Err(e),
            (
                Settle::Sent {
                    external_ref,
                    response,
                    found,
                    notes,
                    ..
                },
                Ok(d),
            ) => {
                let (d, event, reference, entry) = sent_rows(
                    d,
                    external_ref.as_deref(),
                    found.as_deref(),
                    notes,
                    &actor,
                    now,
                );
                sent.push((
                    d.id,
                    serde_json::to_string(&d.payload).expect("a payload serialises"),
                    response.as_deref().map(truncate),
                    d.external_ref.clone(),
                ));
                events.push(event);
                refs.extend(reference);
                Ok((d, Some(entry)))
            }
            (
                Settle::Failed {
                    failure, policy, ..
                },
                Ok(_),
            ) => unsent_in(&*txn, id, Unsent::Failed(failure, policy), now).await,
            (Settle::Unproved { why, policy, .. }, Ok(_)) => {
                unsent_in(&*txn, id, Unsent::Unproved(why, policy), now).await
            }
            (Settle::Park { why, .. }, Ok(_)) => unsent_in(&*txn, id, Unsent::Park(why), now).await,
        };
        match result {
            Ok((d, entry)) => {
                entries.extend(entry);
                results.push(Ok(d));
            }
            Err(e @ (StoreError::Conflict(_) | StoreError::NotFound { .. })) => {
                tracing::warn!(delivery = id.0, error = %e, "outcome not recorded");
                results.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
    mark_sent(&*txn, &sent, now).await?;
    for chunk in events.chunks(200) {
        case_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&*txn)
            .await?;
    }
    entries.extend(keep_references(&*txn, refs, now).await?);
    audit::append(&*txn, &entries).await?;
    txn.commit().await?;
    Ok(results)
}

/// The batch's deliveries by id, in one read.
async fn load_batch<C: ConnectionTrait>(
    txn: &C,
    outcomes: &[Settle],
) -> Result<std::collections::HashMap<DeliveryId, Delivery>, StoreError> {
    let ids: Vec<DeliveryId> = outcomes.iter().map(Settle::id).collect();
    let mut loaded = std::collections::HashMap::new();
    for row in delivery::Entity::find()
        .filter(delivery::Column::Id.is_in(ids.iter().map(|d| d.0)))
        .all(txn)
        .await?
    {
        let d = from_row(row)?;
        loaded.insert(d.id, d);
    }
    Ok(loaded)
}

/// The delivery an outcome is for, if this process may still record it: it is sending and,
/// when `owner` is given, held by that owner.
fn held(
    delivery: Option<Delivery>,
    id: DeliveryId,
    owner: Option<&str>,
) -> Result<Delivery, StoreError> {
    match delivery {
        None => Err(StoreError::NotFound {
            kind: "delivery",
            id: id.to_string(),
        }),
        Some(d) if d.state != DeliveryState::Sending => Err(StoreError::Conflict(format!(
            "delivery {id} is {}, not sending",
            d.state.as_str()
        ))),
        Some(d) if owner.is_some() && d.lease_owner.as_deref() != owner => Err(
            StoreError::Conflict(format!("delivery {id} is no longer held by this process")),
        ),
        Some(d) => Ok(d),
    }
}

/// Marks the batch's sent deliveries sent, a hundred to a statement: (id, payload, response,
/// external reference).
async fn mark_sent<C: ConnectionTrait>(
    txn: &C,
    sent: &[(DeliveryId, String, Option<String>, Option<String>)],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let backend = txn.get_database_backend();
    for chunk in sent.chunks(100) {
        let p = |n| placeholder(backend, n);
        // Placeholders in order of appearance: SQLite's `?` binds by position.
        let rows: Vec<String> = (0..chunk.len())
            .map(|i| {
                let b = i * 4;
                format!(
                    "(CAST({} AS BIGINT), {}, {}, {})",
                    p(b + 1),
                    p(b + 2),
                    p(b + 3),
                    p(b + 4)
                )
            })
            .collect();
        let n = chunk.len() * 4;
        let sql = format!(
            "WITH v(id, payload, last_response, external_ref) AS (VALUES {}) \
             UPDATE deliveries SET state = 'sent', payload = v.payload, queued_until = NULL, \
             lease_until = NULL, lease_owner = NULL, ambiguous_since = NULL, checks = 0, \
             last_error = NULL, last_response = v.last_response, \
             external_ref = v.external_ref, updated_at = {}, sent_at = {} \
             FROM v WHERE deliveries.id = v.id",
            rows.join(", "),
            p(n + 1),
            p(n + 2)
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(n + 2);
        for (id, payload, response, external) in chunk {
            values.push(id.0.into());
            values.push(payload.clone().into());
            values.push(response.clone().into());
            values.push(external.clone().into());
        }
        values.push(now.into());
        values.push(now.into());
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    Ok(())
}

/// Stores connectors' references for cases; the first reference a connector gives a case is
/// kept, and later ones are ignored. Updates the back-end made before its reference was known
/// are applied now (see [`crate::inbound`]); their audit entries are returned.
pub(crate) async fn keep_references<C: ConnectionTrait>(
    conn: &C,
    refs: Vec<external_ref::ActiveModel>,
    now: DateTime<Utc>,
) -> Result<Vec<junction_domain::AuditEntry>, StoreError> {
    let known: Vec<(String, String, String)> = refs
        .iter()
        .filter_map(|r| match (&r.case_id, &r.connector_id, &r.external_id) {
            (Set(case), Set(connector), Set(reference)) => {
                Some((case.clone(), connector.clone(), reference.clone()))
            }
            _ => None,
        })
        .collect();
    for chunk in refs.chunks(200) {
        external_ref::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    external_ref::Column::CaseId,
                    external_ref::Column::ConnectorId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(conn)
            .await?;
    }
    crate::inbound::release(conn, &known, now).await
}

pub(crate) type SentRows = (
    Delivery,
    case_event::ActiveModel,
    Option<external_ref::ActiveModel>,
    junction_domain::AuditEntry,
);

/// `d` as sent, with the event, reference and audit entry that go with it; the caller writes
/// the delivery row. `found` says how it is known to have arrived when no send was answered.
pub(crate) fn sent_rows(
    d: Delivery,
    external: Option<&str>,
    found: Option<&str>,
    notes: &[String],
    actor: &Actor,
    now: DateTime<Utc>,
) -> SentRows {
    let id = d.id;
    let payload = junction_domain::DeliveryPayload {
        token: None,
        ..d.payload.clone()
    };
    let reference =
        external
            .filter(|_| d.kind == DeliveryKind::Case)
            .map(|r| external_ref::ActiveModel {
                case_id: Set(d.case_id.clone()),
                connector_id: Set(d.connector_id.clone()),
                external_id: Set(r.to_string()),
                delivery_id: Set(id.0),
                created_at: Set(now),
            });
    let mut data = json!({
        "delivery": id,
        "connector": d.connector_id,
        "kind": d.kind.as_str(),
        "external_ref": external,
        "attempts": d.attempts,
    });
    if let Some(how) = found {
        data["found"] = Value::String(how.to_string());
    }
    if !notes.is_empty() {
        data["notes"] = json!(notes);
    }
    let event = case_event::ActiveModel {
        case_id: Set(d.case_id.clone()),
        kind: Set(CaseEventKind::Delivered.as_str().to_string()),
        actor: Set(actor.subject.clone()),
        at: Set(now),
        data: Set(data.to_string()),
        ..Default::default()
    };
    let entry = actor.change(
        "delivery",
        &id.to_string(),
        "deliver",
        json!({"state": d.state.as_str()}),
        data,
    );
    (
        Delivery {
            state: DeliveryState::Sent,
            payload,
            external_ref: external.map(str::to_string),
            sent_at: Some(now),
            updated_at: now,
            ambiguous_since: None,
            checks: 0,
            lease_owner: None,
            ..d
        },
        event,
        reference,
        entry,
    )
}

pub(crate) async fn load_sending<C: ConnectionTrait>(
    conn: &C,
    id: DeliveryId,
) -> Result<Delivery, StoreError> {
    let d = load(conn, id).await?;
    if d.state != DeliveryState::Sending {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is {}, not sending",
            d.state.as_str()
        )));
    }
    Ok(d)
}
