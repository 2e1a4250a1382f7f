//! Deliveries: created with their case, claimed one attempt at a time, and settled as sent,
//! failed (retry at T) or dead. Pauses hold a connector's or an agency's deliveries in place.
//!
//! The retry schedule lives here, in the delivery row (attempts, next attempt, last error), not
//! in the queue: a restart, a crash or a lost job forgets nothing, and the reconciler finds
//! every delivery that is due and has no live job.

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::delivery::{AfterFailure, idempotency_key};
use junction_domain::route::{ConnectorSource, Route, SendMethods};
use junction_domain::{Actor, Case, CaseEventKind, DeliveryKind, DeliveryState, RetryPolicy};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};

use crate::cases::insert_event;
use crate::db::placeholder;
use crate::entity::{agency, case_event, delivery, external_ref};
use crate::{Store, StoreError, audit};

pub use crate::pauses::{Pause, PauseTarget, pause, pauses, resume};

/// Longest error or raw answer kept on a delivery, in bytes.
pub const MAX_KEPT_BYTES: usize = 4_096;

/// One delivery, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub id: i64,
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
    /// What the delivery carries beyond the case, e.g. `{ "to": [..] }` for email.
    pub payload: Value,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
}

fn from_row(row: delivery::Model) -> Result<Delivery, StoreError> {
    Ok(Delivery {
        kind: DeliveryKind::parse(&row.kind)
            .ok_or_else(|| StoreError::corrupt("delivery kind", &row.kind))?,
        state: DeliveryState::parse(&row.state)
            .ok_or_else(|| StoreError::corrupt("delivery state", &row.state))?,
        payload: serde_json::from_str(&row.payload)
            .map_err(|e| StoreError::corrupt("delivery payload", e))?,
        id: row.id,
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

pub(crate) fn new_row(
    case: &Case,
    connector: &str,
    kind: DeliveryKind,
    payload: Value,
    now: DateTime<Utc>,
) -> delivery::ActiveModel {
    delivery::ActiveModel {
        case_id: Set(case.id.clone()),
        connector_id: Set(connector.to_string()),
        agency_id: Set(case.agency_id.clone()),
        kind: Set(kind.as_str().to_string()),
        state: Set(DeliveryState::Pending.as_str().to_string()),
        idempotency_key: Set(idempotency_key(&case.id, connector, kind)),
        attempts: Set(0),
        first_attempt_at: Set(None),
        next_attempt_at: Set(now),
        lease_until: Set(None),
        queued_until: Set(None),
        last_error: Set(None),
        last_response: Set(None),
        external_ref: Set(None),
        payload: Set(payload.to_string()),
        created_at: Set(now),
        updated_at: Set(now),
        sent_at: Set(None),
        ..Default::default()
    }
}

/// Creates the deliveries `route` calls for, inside the caller's transaction: the case to its
/// connector, and the `also_email` copy. A case that nothing can carry gets a dead delivery
/// that says why, so it shows up as a failure instead of vanishing.
pub(crate) async fn insert_for_route<C: ConnectionTrait>(
    conn: &C,
    case: &Case,
    route: &Route,
    methods: &SendMethods,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut rows = Vec::new();
    match (&route.connector, route.connector_source) {
        (Some(connector), source)
            if source == ConnectorSource::AgencyEmail
                || Some(connector) == methods.email_connector.as_ref() =>
        {
            let email = agency::Entity::find_by_id(route.agency.as_str())
                .one(conn)
                .await?
                .and_then(|a| a.email);
            let mut row = new_row(
                case,
                connector,
                DeliveryKind::Case,
                json!({"to": email.iter().collect::<Vec<_>>()}),
                now,
            );
            // With no agency address, a rule's or case type's email connector may still have
            // its own recipients; only the agency-email fallback has nowhere to go.
            if email.is_none() && source == ConnectorSource::AgencyEmail {
                row.state = Set(DeliveryState::Dead.as_str().to_string());
                row.last_error = Set(Some(format!(
                    "agency `{}` has no integration and no email address",
                    route.agency
                )));
            }
            rows.push(row);
        }
        (Some(connector), _) => {
            rows.push(new_row(case, connector, DeliveryKind::Case, json!({}), now));
        }
        (None, _) => {
            let mut row = new_row(case, "", DeliveryKind::Case, json!({}), now);
            row.state = Set(DeliveryState::Dead.as_str().to_string());
            row.last_error = Set(Some(format!(
                "agency `{}` has no integration and no email connector is configured",
                route.agency
            )));
            rows.push(row);
        }
    }
    if !route.also_email.is_empty()
        && let Some(email) = &methods.email_connector
    {
        rows.push(new_row(
            case,
            email,
            DeliveryKind::AlsoEmail,
            json!({"to": route.also_email}),
            now,
        ));
    }
    delivery::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Cancels a case's deliveries that have not been sent (or are not being sent); returns their
/// ids. One in the middle of an attempt is left to finish.
pub(crate) async fn cancel_unsent<C: ConnectionTrait>(
    conn: &C,
    case_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<i64>, StoreError> {
    let rows = delivery::Entity::find()
        .filter(delivery::Column::CaseId.eq(case_id))
        .filter(delivery::Column::State.is_in(["pending", "failed"]))
        .all(conn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    if !ids.is_empty() {
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                sea_orm::sea_query::Expr::value(DeliveryState::Cancelled.as_str()),
            )
            .col_expr(
                delivery::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(delivery::Column::Id.is_in(ids.clone()))
            .exec(conn)
            .await?;
    }
    Ok(ids)
}

/// One delivery.
pub async fn get(store: &Store, id: i64) -> Result<Option<Delivery>, StoreError> {
    delivery::Entity::find_by_id(id)
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

/// The condition that a delivery's connector and agency are not paused, as SQL on `d`.
const NOT_PAUSED: &str = "NOT EXISTS (SELECT 1 FROM pauses p WHERE \
     (p.target_type = 'connector' AND p.target_id = d.connector_id) OR \
     (p.target_type = 'agency' AND p.target_id = d.agency_id))";

/// Takes up to `limit` due deliveries that no queued job is expected to handle, and marks them
/// as queued until `now + hold`: the caller then hands each to the queue. A delivery whose
/// job is lost (a crash between queueing and running) is taken again once the hold expires.
///
/// Deliveries to the connectors in `ordered` go one at a time, oldest first: one is taken only
/// when no earlier delivery to its connector is pending, in flight or waiting to be retried.
/// A dead delivery no longer holds later ones back.
pub async fn take_for_queue(
    store: &Store,
    now: DateTime<Utc>,
    hold: Duration,
    limit: u64,
    ordered: &[String],
) -> Result<Vec<i64>, StoreError> {
    let backend = store.conn().get_database_backend();
    let p = |n| placeholder(backend, n);
    let in_order = if ordered.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = (0..ordered.len()).map(|i| p(4 + i)).collect();
        format!(
            " AND (d.connector_id NOT IN ({list}) OR NOT EXISTS (SELECT 1 FROM deliveries o \
             WHERE o.connector_id = d.connector_id AND o.id < d.id \
             AND o.state IN ('pending', 'failed', 'sending')))",
            list = list.join(", ")
        )
    };
    let sql = format!(
        "SELECT d.id AS id FROM deliveries d WHERE \
         ((d.state IN ('pending', 'failed') AND d.next_attempt_at <= {}) \
           OR (d.state = 'sending' AND d.lease_until < {})) \
         AND (d.queued_until IS NULL OR d.queued_until < {} OR d.state = 'sending') \
         AND {NOT_PAUSED}{in_order} ORDER BY d.id LIMIT {limit}",
        p(1),
        p(2),
        p(3)
    );
    let mut values: Vec<sea_orm::Value> = vec![now.into(), now.into(), now.into()];
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
    Ok(ids)
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
         FROM deliveries d WHERE d.state IN ('pending', 'failed', 'sending') AND {NOT_PAUSED}"
    );
    let row = store
        .conn()
        .query_one_raw(Statement::from_string(backend, sql))
        .await?;
    Ok(row.and_then(|r| r.try_get::<Option<DateTime<Utc>>>("", "t").ok().flatten()))
}

/// Claims delivery `id` for one attempt, holding it for `lease`. Returns `None` when it is not
/// due, is paused, or another worker holds it; the claim itself is one guarded update, so two
/// workers can never both hold it.
pub async fn claim(
    store: &Store,
    id: i64,
    lease: Duration,
) -> Result<Option<Delivery>, StoreError> {
    Ok(claim_batch(store, &[(id, lease)]).await?.pop().flatten())
}

/// Claims several deliveries in one transaction (one commit for many workers' claims): one
/// guarded update per distinct lease, then one read of what was claimed.
pub async fn claim_batch(
    store: &Store,
    claims: &[(i64, Duration)],
) -> Result<Vec<Option<Delivery>>, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let backend = txn.get_database_backend();
    let mut leases: Vec<Duration> = claims.iter().map(|(_, l)| *l).collect();
    leases.sort_unstable();
    leases.dedup();
    let mut claimed: std::collections::HashMap<i64, Delivery> = std::collections::HashMap::new();
    for lease in leases {
        let ids: Vec<i64> = claims
            .iter()
            .filter(|(_, l)| *l == lease)
            .map(|(id, _)| *id)
            .collect();
        let until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::hours(1));
        let p = |n| placeholder(backend, n);
        // Placeholders in order of appearance: SQLite's `?` binds by position.
        let list: Vec<String> = (0..ids.len()).map(|i| p(6 + i)).collect();
        let sql = format!(
            "UPDATE deliveries SET state = 'sending', lease_until = {}, attempts = attempts + 1, \
             first_attempt_at = COALESCE(first_attempt_at, {}), updated_at = {} \
             WHERE ((state IN ('pending', 'failed') AND next_attempt_at <= {}) \
               OR (state = 'sending' AND lease_until < {})) \
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
        let mut values: Vec<sea_orm::Value> =
            vec![until.into(), now.into(), now.into(), now.into(), now.into()];
        values.extend(ids.iter().map(|id| sea_orm::Value::from(*id)));
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
        // What this statement claimed carries exactly its lease.
        for row in delivery::Entity::find()
            .filter(delivery::Column::Id.is_in(ids))
            .filter(delivery::Column::State.eq(DeliveryState::Sending.as_str()))
            .filter(delivery::Column::LeaseUntil.eq(until))
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

/// How an attempt failed.
#[derive(Debug, Clone)]
pub struct Failure {
    pub error: String,
    /// The back-end's raw answer, if there was one.
    pub response: Option<String>,
    /// Retrying cannot help (the back-end refused the content).
    pub permanent: bool,
    /// The attempt may have reached the back-end: the next one checks before resending.
    pub ambiguous: bool,
    /// A token the back-end issued that is still to be resolved.
    pub token: Option<String>,
}

/// The outcome of one attempt, to be recorded.
#[derive(Debug, Clone)]
pub enum Settle {
    Sent {
        id: i64,
        external_ref: Option<String>,
        response: Option<String>,
    },
    Failed {
        id: i64,
        failure: Failure,
        policy: RetryPolicy,
    },
}

/// Records a successful attempt: the delivery is sent, and the connector's reference for the
/// case is kept (the first one a connector gives a case is never overwritten).
pub async fn succeed(
    store: &Store,
    id: i64,
    external_ref: Option<&str>,
    response: Option<&str>,
) -> Result<Delivery, StoreError> {
    let settle = Settle::Sent {
        id,
        external_ref: external_ref.map(str::to_string),
        response: response.map(str::to_string),
    };
    settle_batch(store, &[settle])
        .await?
        .pop()
        .expect("one outcome")
}

/// Records a failed attempt: a transient failure is retried on `policy`'s schedule until the
/// delivery is older than its maximum age; a permanent one goes dead at once. Returns the
/// delivery as it now stands.
pub async fn fail(
    store: &Store,
    id: i64,
    failure: &Failure,
    policy: &RetryPolicy,
) -> Result<Delivery, StoreError> {
    let settle = Settle::Failed {
        id,
        failure: failure.clone(),
        policy: *policy,
    };
    settle_batch(store, &[settle])
        .await?
        .pop()
        .expect("one outcome")
}

/// Records several outcomes in one transaction, with their events and audit entries. An
/// outcome for a delivery that is no longer `sending` is refused on its own (a conflict)
/// without failing the others.
pub async fn settle_batch(
    store: &Store,
    outcomes: &[Settle],
) -> Result<Vec<Result<Delivery, StoreError>>, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    // One read for every delivery in the batch; successes then cost one update each, and
    // their events and references are inserted together.
    let ids: Vec<i64> = outcomes
        .iter()
        .map(|o| match o {
            Settle::Sent { id, .. } | Settle::Failed { id, .. } => *id,
        })
        .collect();
    let mut loaded: std::collections::HashMap<i64, Delivery> = std::collections::HashMap::new();
    for row in delivery::Entity::find()
        .filter(delivery::Column::Id.is_in(ids))
        .all(&*txn)
        .await?
    {
        let d = from_row(row)?;
        loaded.insert(d.id, d);
    }
    let mut results = Vec::with_capacity(outcomes.len());
    let mut entries = Vec::new();
    let mut events = Vec::new();
    let mut refs = Vec::new();
    // Successes: (id, payload, response, external reference), written in one statement.
    let mut sent: Vec<(i64, String, Option<String>, Option<String>)> = Vec::new();
    let actor = Actor::internal("delivery");
    for outcome in outcomes {
        let (id, result) = match outcome {
            Settle::Sent {
                id,
                external_ref,
                response,
            } => {
                let result = match loaded.remove(id) {
                    None => Err(StoreError::NotFound {
                        kind: "delivery",
                        id: id.to_string(),
                    }),
                    Some(d) if d.state != DeliveryState::Sending => Err(StoreError::Conflict(
                        format!("delivery {id} is {}, not sending", d.state.as_str()),
                    )),
                    Some(d) => {
                        let (d, event, reference, entry) =
                            sent_rows(d, external_ref.as_deref(), &actor, now);
                        sent.push((
                            d.id,
                            d.payload.to_string(),
                            response.as_deref().map(truncate),
                            d.external_ref.clone(),
                        ));
                        events.push(event);
                        refs.extend(reference);
                        Ok((d, Some(entry)))
                    }
                };
                (*id, result)
            }
            Settle::Failed {
                id,
                failure,
                policy,
            } => {
                loaded.remove(id);
                (*id, fail_in(&*txn, *id, failure, policy, now).await)
            }
        };
        match result {
            Ok((d, entry)) => {
                entries.extend(entry);
                results.push(Ok(d));
            }
            Err(e @ (StoreError::Conflict(_) | StoreError::NotFound { .. })) => {
                tracing::warn!(delivery = id, error = %e, "outcome not recorded");
                results.push(Err(e));
            }
            Err(e) => return Err(e),
        }
    }
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
             lease_until = NULL, last_error = NULL, last_response = v.last_response, \
             external_ref = v.external_ref, updated_at = {}, sent_at = {} \
             FROM v WHERE deliveries.id = v.id",
            rows.join(", "),
            p(n + 1),
            p(n + 2)
        );
        let mut values: Vec<sea_orm::Value> = Vec::with_capacity(n + 2);
        for (id, payload, response, external) in chunk {
            values.push((*id).into());
            values.push(payload.clone().into());
            values.push(response.clone().into());
            values.push(external.clone().into());
        }
        values.push(now.into());
        values.push(now.into());
        txn.execute_raw(Statement::from_sql_and_values(backend, sql, values))
            .await?;
    }
    for chunk in events.chunks(200) {
        case_event::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&*txn)
            .await?;
    }
    for chunk in refs.chunks(200) {
        // The first reference a connector gives a case is kept: later ones are ignored.
        external_ref::Entity::insert_many(chunk.to_vec())
            .on_conflict(
                sea_orm::sea_query::OnConflict::columns([
                    external_ref::Column::CaseId,
                    external_ref::Column::ConnectorId,
                ])
                .do_nothing()
                .to_owned(),
            )
            .exec_without_returning(&*txn)
            .await?;
    }
    audit::append(&*txn, &entries).await?;
    txn.commit().await?;
    Ok(results)
}

type SentRows = (
    Delivery,
    case_event::ActiveModel,
    Option<external_ref::ActiveModel>,
    junction_domain::AuditEntry,
);

/// `d` as sent, with the event, reference and audit entry that go with it; the caller writes
/// the delivery rows of a whole batch in one statement.
fn sent_rows(d: Delivery, external: Option<&str>, actor: &Actor, now: DateTime<Utc>) -> SentRows {
    let id = d.id;
    let mut payload = d.payload.clone();
    if let Value::Object(map) = &mut payload {
        map.remove("ambiguous");
        map.remove("token");
    }
    let reference =
        external
            .filter(|_| d.kind == DeliveryKind::Case)
            .map(|r| external_ref::ActiveModel {
                case_id: Set(d.case_id.clone()),
                connector_id: Set(d.connector_id.clone()),
                external_id: Set(r.to_string()),
                delivery_id: Set(id),
                created_at: Set(now),
            });
    let data = json!({
        "delivery": id,
        "connector": d.connector_id,
        "kind": d.kind.as_str(),
        "external_ref": external,
        "attempts": d.attempts,
    });
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
            ..d
        },
        event,
        reference,
        entry,
    )
}

async fn load_sending<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Delivery, StoreError> {
    let d = load(conn, id).await?;
    if d.state != DeliveryState::Sending {
        return Err(StoreError::Conflict(format!(
            "delivery {id} is {}, not sending",
            d.state.as_str()
        )));
    }
    Ok(d)
}

async fn fail_in<C: ConnectionTrait>(
    conn: &C,
    id: i64,
    failure: &Failure,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> Result<(Delivery, Option<junction_domain::AuditEntry>), StoreError> {
    let d = load_sending(conn, id).await?;
    let decision = if failure.permanent {
        AfterFailure::GiveUp
    } else {
        policy.after_failure(
            d.attempts.max(1),
            d.first_attempt_at.unwrap_or(now),
            now,
            rand_unit(),
        )
    };
    let (state, next) = match decision {
        AfterFailure::RetryAt(t) => (DeliveryState::Failed, t.trunc_subsecs(6)),
        AfterFailure::GiveUp => (DeliveryState::Dead, now),
    };
    let error = truncate(&failure.error);
    let mut payload = d.payload.clone();
    if let Value::Object(map) = &mut payload {
        // Once ambiguous, stays so until a success: a later clean failure says nothing
        // about whether the earlier attempt arrived.
        if failure.ambiguous {
            map.insert("ambiguous".into(), Value::Bool(true));
        }
        match &failure.token {
            Some(t) => {
                map.insert("token".into(), Value::String(t.clone()));
            }
            None => {
                map.remove("token");
            }
        }
    }
    delivery::Entity::update(delivery::ActiveModel {
        id: Set(id),
        state: Set(state.as_str().to_string()),
        payload: Set(payload.to_string()),
        queued_until: Set(None),
        lease_until: Set(None),
        next_attempt_at: Set(next),
        last_error: Set(Some(error.clone())),
        last_response: Set(failure.response.as_deref().map(truncate)),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    let mut entry = None;
    if state == DeliveryState::Dead {
        let actor = Actor::internal("delivery");
        let data = json!({
            "delivery": id,
            "connector": d.connector_id,
            "kind": d.kind.as_str(),
            "error": error,
            "attempts": d.attempts,
        });
        insert_event(
            conn,
            &d.case_id,
            CaseEventKind::DeliveryDead,
            &actor,
            now,
            data.clone(),
        )
        .await?;
        entry = Some(actor.change(
            "delivery",
            &id.to_string(),
            "give_up",
            json!({"state": d.state.as_str()}),
            data,
        ));
    }
    Ok((
        Delivery {
            state,
            payload,
            next_attempt_at: next,
            last_error: Some(error),
            last_response: failure.response.as_deref().map(truncate),
            updated_at: now,
            ..d
        },
        entry,
    ))
}

/// A manager's retry of a dead or failed delivery: due now, with a fresh maximum age.
pub async fn retry(store: &Store, actor: &Actor, id: i64) -> Result<Delivery, StoreError> {
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
    delivery::Entity::update(delivery::ActiveModel {
        id: Set(id),
        state: Set(DeliveryState::Pending.as_str().to_string()),
        next_attempt_at: Set(now),
        queued_until: Set(None),
        first_attempt_at: Set(None),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(&*txn)
    .await?;
    audit::append(
        &*txn,
        &[actor.change(
            "delivery",
            &id.to_string(),
            "retry",
            json!({"state": d.state.as_str(), "last_error": d.last_error}),
            json!({"state": "pending"}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(Delivery {
        state: DeliveryState::Pending,
        next_attempt_at: now,
        first_attempt_at: None,
        updated_at: now,
        ..d
    })
}

async fn load<C: ConnectionTrait>(conn: &C, id: i64) -> Result<Delivery, StoreError> {
    let mut q = delivery::Entity::find_by_id(id);
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
fn rand_unit() -> f64 {
    use rand::Rng;
    rand::rng().random::<f64>()
}

/// A connector's delivery health.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Health {
    pub pending: u64,
    pub failing: u64,
    pub dead: u64,
    pub sent: u64,
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
