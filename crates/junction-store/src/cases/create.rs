//! Intake in the store: a new case, its deliveries, files, events, shares and audit entry in
//! one transaction; and, for a case sent again under the same idempotency key by the same
//! client, the case it already made.

use chrono::{SubsecRound, Utc};
use junction_domain::{
    Actor, Case, CaseEventKind, NewAttachment, NewCase, RefusedFile, RoutingTable, ValidationErrors,
};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr};
use serde_json::{Value, json};

use super::{audit_view, from_row, insert_event, next_reference, to_row};
use crate::catalogue::load_case_type;
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

/// A case taken in, or found again.
#[derive(Debug, Clone, PartialEq)]
pub struct Created {
    pub case: Case,
    /// The case was already made under this client's idempotency key; nothing was written.
    pub replayed: bool,
}

/// Validates and stores a new case of `case_type_code` in `jurisdiction_id`, with its `created`
/// event and audit entry, in one transaction.
///
/// The case is routed through `routing`, and its deliveries are committed with it, so a case
/// that exists always has somewhere to go.
pub async fn create(
    store: &Store,
    actor: &Actor,
    jurisdiction_id: &str,
    new: NewCase,
    routing: &RoutingTable,
) -> Result<Case, StoreError> {
    let created = create_with_files(
        store,
        actor,
        jurisdiction_id,
        new,
        routing,
        Arrival::default(),
    )
    .await?;
    Ok(created.case)
}

/// As [`create`], with what came with the case: its files, and the client's idempotency key.
pub async fn create_with_files(
    store: &Store,
    actor: &Actor,
    jurisdiction_id: &str,
    new: NewCase,
    routing: &RoutingTable,
    arrival: Arrival<'_>,
) -> Result<Created, StoreError> {
    let replayed = |case| Created {
        case,
        replayed: true,
    };
    let Some(key) = arrival.idempotency_key else {
        let case = insert(store, actor, jurisdiction_id, new, routing, arrival).await?;
        return Ok(Created {
            case,
            replayed: false,
        });
    };
    if let Some(case) = by_key(store.conn(), &actor.subject, key).await? {
        return Ok(replayed(case));
    }
    match insert(store, actor, jurisdiction_id, new, routing, arrival).await {
        Ok(case) => Ok(Created {
            case,
            replayed: false,
        }),
        // Another request with the same key committed first: its case is the answer.
        Err(StoreError::Database(e))
            if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) =>
        {
            let case = by_key(store.conn(), &actor.subject, key).await?;
            case.map(replayed).ok_or(StoreError::Database(e))
        }
        Err(e) => Err(e),
    }
}

/// The case `client` made under idempotency key `key`.
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
    jurisdiction_id: &str,
    new: NewCase,
    routing: &RoutingTable,
    arrival: Arrival<'_>,
) -> Result<Case, StoreError> {
    let Some(case_type) =
        load_case_type(store.conn(), jurisdiction_id, &new.case_type_code).await?
    else {
        let mut errors = ValidationErrors::default();
        errors.push(
            "caseType",
            format!(
                "`{}` is not a case type of `{jurisdiction_id}`",
                new.case_type_code
            ),
        );
        return Err(errors.into());
    };
    let new = new.validate(&case_type)?;
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let number = next_reference(&*txn).await?;
    let mut case = Case::open(
        uuid::Uuid::now_v7().to_string(),
        number.to_string(),
        jurisdiction_id,
        &case_type.agency_id,
        NewCase {
            case_type_code: case_type.code.clone(),
            ..new
        },
        &actor.subject,
        now,
    );
    let route = routing.route(&case, &case_type.agency_id);
    case.agency_id = route.agency.clone();
    case.route = Some(route.clone());
    let mut row = to_row(&case);
    row.idempotency_key = Set(arrival.idempotency_key.map(str::to_string));
    case::Entity::insert(row)
        .exec_without_returning(&*txn)
        .await?;
    deliveries::insert_for_route(&*txn, &case, &route, &routing.methods, now).await?;
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
        json!({"route": route}),
    )
    .await?;
    sharing::apply_rules(
        &*txn,
        actor,
        &case,
        &routing.share_rules,
        routing.methods.email_connector.as_deref(),
        now,
    )
    .await?;
    let mut after = audit_view(&case, &case_type);
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
