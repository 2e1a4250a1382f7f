//! Intake in the store: persisting what intake decided (a validated, routed case and its
//! planned deliveries) with its files, events, shares and audit entry in one transaction; and,
//! for a case sent again under the same idempotency key by the same client, the case it
//! already made. The decisions are the domain's, taken by `junction-api`'s intake.

use junction_domain::delivery::PlannedDelivery;
use junction_domain::{
    Actor, Case, CaseEventKind, CaseType, NewAttachment, RefusedFile, ShareRule,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr};
use serde_json::{Value, json};

use super::{audit_view, from_row, insert_event, next_reference, to_row};
use crate::entity::case;
use crate::{Store, StoreError, audit, deliveries, sharing};

/// What came with a new case besides its content.
#[derive(Debug, Clone, Copy, Default)]
pub struct Arrival<'a> {
    /// Files to keep with the case.
    pub files: &'a [NewAttachment],
    /// Files that came but were over a limit; recorded on the case.
    pub refused: &'a [RefusedFile],
    /// The client's key for this case (a front-end's own id, or an `Idempotency-Key`): the same
    /// client sending the same key again gets the case it already made.
    pub idempotency_key: Option<&'a str>,
}

/// A new case as intake decided it.
#[derive(Debug, Clone)]
pub struct Planned<'a> {
    /// Validated and routed, with its id; its reference is given here, as it is stored.
    pub case: Case,
    pub case_type: &'a CaseType,
    /// The deliveries its route calls for.
    pub deliveries: Vec<PlannedDelivery>,
    /// The jurisdiction's sharing rules, tried against the case as it is stored.
    pub share_rules: &'a [ShareRule],
    /// The email connector that carries notices to partners.
    pub email_connector: Option<&'a str>,
}

/// A case taken in, or found again.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub case: Case,
    /// The case was already made under this client's idempotency key; nothing was written.
    pub replayed: bool,
}

/// The case `client` made under idempotency key `key`, if any.
pub async fn by_idempotency_key(
    store: &Store,
    client: &str,
    key: &str,
) -> Result<Option<Case>, StoreError> {
    by_key(store.conn(), client, key).await
}

/// Stores `planned` with its deliveries, files, events, shares and audit entry in one
/// transaction. Under an idempotency key another request committed first, the answer is the
/// case that request made.
pub async fn create(
    store: &Store,
    actor: &Actor,
    planned: Planned<'_>,
    arrival: Arrival<'_>,
) -> Result<Created, StoreError> {
    match insert(store, actor, planned, arrival).await {
        Ok(case) => Ok(Created {
            case,
            replayed: false,
        }),
        Err(StoreError::Database(e))
            if arrival.idempotency_key.is_some()
                && matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            let key = arrival.idempotency_key.unwrap_or_default();
            let case = by_key(store.conn(), &actor.subject, key).await?;
            case.map(|case| Created {
                case,
                replayed: true,
            })
            .ok_or(StoreError::Database(e))
        }
        Err(e) => Err(e),
    }
}

async fn by_key<C: ConnectionTrait>(
    conn: &C,
    client: &str,
    key: &str,
) -> Result<Option<Case>, StoreError> {
    case::Entity::find()
        .filter(case::Column::CreatedBy.eq(client))
        .filter(case::Column::IdempotencyKey.eq(key))
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

async fn insert(
    store: &Store,
    actor: &Actor,
    planned: Planned<'_>,
    arrival: Arrival<'_>,
) -> Result<Case, StoreError> {
    let Planned {
        mut case,
        case_type,
        deliveries: planned_deliveries,
        share_rules,
        email_connector,
    } = planned;
    let now = case.created_at;
    let txn = store.begin_write().await?;
    case.reference = next_reference(&*txn).await?.to_string();
    let mut row = to_row(&case);
    row.idempotency_key = Set(arrival.idempotency_key.map(str::to_string));
    case::Entity::insert(row)
        .exec_without_returning(&*txn)
        .await?;
    deliveries::insert_planned(&*txn, &case, &planned_deliveries, now).await?;
    let stored = crate::attachments::insert(&*txn, &case.id, arrival.files, now).await?;
    crate::attachments::record_refused(&*txn, &case.id, arrival.refused, actor, now).await?;
    insert_event(
        &*txn,
        &case.id,
        CaseEventKind::Created,
        actor,
        now,
        json!({"reference": case.reference}),
    )
    .await?;
    insert_event(
        &*txn,
        &case.id,
        CaseEventKind::Routed,
        actor,
        now,
        json!({"route": case.route}),
    )
    .await?;
    sharing::apply_rules(&*txn, actor, &case, share_rules, email_connector, now).await?;
    let mut after = audit_view(&case, case_type);
    if !stored.is_empty()
        && let Value::Object(map) = &mut after
    {
        // What arrived, by name, size and digest; the bytes stay in their table.
        map.insert(
            "attachments".into(),
            stored
                .iter()
                .map(|a| json!({"part": a.part, "fileName": a.file_name, "size": a.size, "sha256": a.sha256}))
                .collect(),
        );
    }
    if !arrival.refused.is_empty()
        && let Value::Object(map) = &mut after
    {
        map.insert("refusedFiles".into(), json!(arrival.refused));
    }
    let entry = actor.change("case", &case.id, "create", Value::Null, after);
    audit::append(&*txn, &[entry]).await?;
    txn.commit().await?;
    Ok(case)
}
