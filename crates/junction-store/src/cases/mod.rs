//! Cases: reading, status changes, notes and history; intake is in `create.rs`, listing in
//! `list.rs`, rerouting in `reroute.rs`.

mod create;
mod list;
mod reroute;

pub use create::{Arrival, Created, Planned, by_idempotency_key, create};
pub use list::{CaseFilter, CaseOrder, CasePage, SharedWith, SortKey, list};
pub use reroute::reroute;

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::case::validate_note;
use junction_domain::{
    Actor, Case, CaseEvent, CaseEventKind, CaseStatus, CaseType, Classification, Location,
    Submitter,
};
use sea_orm::sea_query::ExprTrait;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};

use crate::catalogue::{case_type_id, load_case_type};
use crate::db::placeholder;
use crate::entity::{case, case_event};
use crate::{Store, StoreError, audit, updates};

/// The case with this id (not reference): one primary-key read.
pub async fn get_by_id(store: &Store, id: &str) -> Result<Option<Case>, StoreError> {
    case::Entity::find_by_id(id.to_string())
        .one(store.conn())
        .await?
        .map(from_row)
        .transpose()
}

/// The case with this id or reference.
pub async fn get(store: &Store, id_or_reference: &str) -> Result<Option<Case>, StoreError> {
    let row = case::Entity::find()
        .filter(
            case::Column::Id
                .eq(id_or_reference)
                .or(case::Column::Reference.eq(id_or_reference)),
        )
        .one(store.conn())
        .await?;
    row.map(from_row).transpose()
}

/// Moves a case to `to`. With `expected_version`, fails with a conflict if the case changed since.
pub async fn change_status(
    store: &Store,
    actor: &Actor,
    id: &str,
    to: CaseStatus,
    expected_version: Option<i64>,
) -> Result<Case, StoreError> {
    let txn = store.begin_write().await?;
    let mut case = load_for_update(&*txn, id).await?;
    if let Some(v) = expected_version
        && v != case.version
    {
        return Err(StoreError::Conflict(format!(
            "case was changed (version {} now, {v} expected)",
            case.version
        )));
    }
    let from = case.status;
    case.status = from.transition(to).map_err(StoreError::Conflict)?;
    let now = Utc::now().trunc_subsecs(6);
    bump(&*txn, &mut case, now, Some((to, now))).await?;
    // Front-ends read status changes back as Open311 service request updates, saying what the
    // case type says of the new status.
    let notice = load_case_type(&*txn, &case.jurisdiction_id, &case.case_type_code)
        .await?
        .map_or_else(
            || junction_domain::StatusNotice::default_for(to),
            |t| t.status_notice(to),
        );
    let update = updates::NewUpdate {
        source: updates::JUNCTION_SOURCE.into(),
        status: Some(to),
        external_status_code: notice.external_status_code,
        description: notice.text,
        ..Default::default()
    };
    updates::insert_row(&*txn, &case.id, &update, to, now.trunc_subsecs(0), now).await?;
    let data = json!({"from": from.as_str(), "to": to.as_str()});
    insert_event(
        &*txn,
        &case.id,
        CaseEventKind::StatusChanged,
        actor,
        now,
        data,
    )
    .await?;
    let entry = actor.change(
        "case",
        &case.id,
        "change_status",
        json!({"status": from.as_str()}),
        json!({"status": to.as_str()}),
    );
    audit::append(&*txn, &[entry]).await?;
    txn.commit().await?;
    Ok(case)
}

/// Adds a note to a case's history.
pub async fn add_note(
    store: &Store,
    actor: &Actor,
    id: &str,
    note: &str,
) -> Result<CaseEvent, StoreError> {
    let note = validate_note(note)?;
    let txn = store.begin_write().await?;
    let mut case = load_for_update(&*txn, id).await?;
    let now = Utc::now().trunc_subsecs(6);
    bump(&*txn, &mut case, now, None).await?;
    let event = insert_event(
        &*txn,
        &case.id,
        CaseEventKind::NoteAdded,
        actor,
        now,
        json!({"note": note}),
    )
    .await?;
    let after = json!({"event_id": event.id, "note_sha256": junction_domain::audit::sha256_hex(note.as_bytes())});
    audit::append(
        &*txn,
        &[actor.change("case", &case.id, "add_note", Value::Null, after)],
    )
    .await?;
    txn.commit().await?;
    Ok(event)
}

/// A case's history, oldest first.
pub async fn history(store: &Store, case_id: &str) -> Result<Vec<CaseEvent>, StoreError> {
    let rows = case_event::Entity::find()
        .filter(case_event::Column::CaseId.eq(case_id))
        .order_by_asc(case_event::Column::Id)
        .all(store.conn())
        .await?;
    rows.into_iter().map(event_from_row).collect()
}

pub(crate) async fn load_for_update<C: ConnectionTrait>(
    conn: &C,
    id: &str,
) -> Result<Case, StoreError> {
    let mut q =
        case::Entity::find().filter(case::Column::Id.eq(id).or(case::Column::Reference.eq(id)));
    if conn.get_database_backend() == DbBackend::Postgres {
        q = q.lock_exclusive();
    }
    let row = q.one(conn).await?.ok_or_else(|| StoreError::NotFound {
        kind: "case",
        id: id.to_string(),
    })?;
    from_row(row)
}

/// Writes the new version, guarded by the old one so a concurrent writer cannot be overwritten;
/// with a status change, the new status and when it changed (by the changer's clock).
pub(crate) async fn bump<C: ConnectionTrait>(
    conn: &C,
    case: &mut Case,
    now: DateTime<Utc>,
    status: Option<(CaseStatus, DateTime<Utc>)>,
) -> Result<(), StoreError> {
    let mut update = case::Entity::update_many()
        .col_expr(
            case::Column::Version,
            sea_orm::sea_query::Expr::value(case.version + 1),
        )
        .col_expr(
            case::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(now),
        );
    if let Some((s, at)) = status {
        update = update
            .col_expr(
                case::Column::Status,
                sea_orm::sea_query::Expr::value(s.as_str()),
            )
            .col_expr(case::Column::StatusAt, sea_orm::sea_query::Expr::value(at));
    }
    let result = update
        .filter(case::Column::Id.eq(case.id.as_str()))
        .filter(case::Column::Version.eq(case.version))
        .exec(conn)
        .await?;
    if result.rows_affected != 1 {
        return Err(StoreError::Conflict(
            "case was changed by someone else; reload and try again".into(),
        ));
    }
    case.version += 1;
    case.updated_at = now;
    if let Some((s, at)) = status {
        case.status = s;
        case.status_at = Some(at);
    }
    Ok(())
}

pub(crate) async fn insert_event<C: ConnectionTrait>(
    conn: &C,
    case_id: &str,
    kind: CaseEventKind,
    actor: &Actor,
    at: DateTime<Utc>,
    data: Value,
) -> Result<CaseEvent, StoreError> {
    let feed_seq = if kind.is_fed() {
        Some(crate::sharing::feed_placeholder())
    } else {
        None
    };
    let row = case_event::ActiveModel {
        case_id: Set(case_id.to_string()),
        kind: Set(kind.as_str().to_string()),
        actor: Set(actor.subject.clone()),
        at: Set(at),
        data: Set(data.to_string()),
        feed_seq: Set(feed_seq),
        ..Default::default()
    };
    let id = case_event::Entity::insert(row)
        .exec(conn)
        .await?
        .last_insert_id;
    Ok(CaseEvent {
        id,
        case_id: case_id.to_string(),
        kind,
        actor: actor.subject.clone(),
        at,
        data,
    })
}

/// The next case reference: from a sequence on PostgreSQL, which holds no lock until the
/// commit, so concurrent intakes do not queue behind each other; from the counter on SQLite,
/// whose one writer at a time serialises intake anyway. Unique on both; a rolled-back intake
/// may leave a gap on PostgreSQL.
pub(crate) async fn next_reference<C: ConnectionTrait>(conn: &C) -> Result<i64, StoreError> {
    let backend = conn.get_database_backend();
    if backend != DbBackend::Postgres {
        return next_counter(conn, "case_reference").await;
    }
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "SELECT nextval('case_reference_seq') AS value",
        ))
        .await?
        .ok_or_else(|| StoreError::corrupt("reference sequence", "no row returned"))?;
    Ok(row.try_get::<i64>("", "value")?)
}

/// Increments and returns a named counter, atomically on both backends.
pub(crate) async fn next_counter<C: ConnectionTrait>(
    conn: &C,
    name: &str,
) -> Result<i64, StoreError> {
    let backend = conn.get_database_backend();
    let sql = format!(
        "INSERT INTO counters (name, value) VALUES ({}, 1) \
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1 RETURNING value",
        placeholder(backend, 1)
    );
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(backend, sql, [name.into()]))
        .await?
        .ok_or_else(|| StoreError::corrupt("counter", "no row returned"))?;
    Ok(row.try_get::<i64>("", "value")?)
}

/// What the audit log keeps of a case: everything but personal and sensitive values, which are
/// marked as present instead, so the log does not become a second copy of personal data.
pub(crate) fn audit_view(case: &Case, case_type: &CaseType) -> Value {
    let mark = |v: &Option<String>| v.as_ref().map(|_| Value::from("[personal]"));
    let fields: BTreeMap<&String, Value> = case
        .fields
        .iter()
        .map(|(code, value)| {
            let class = case_type
                .field(code)
                .map_or(Classification::Sensitive, |f| f.classification);
            let shown = if class >= Classification::Personal {
                Value::from(format!("[{}]", class.as_str()))
            } else {
                value.clone()
            };
            (code, shown)
        })
        .collect();
    json!({
        "reference": case.reference,
        "case_type": case.case_type_code,
        "agency": case.agency_id,
        "status": case.status.as_str(),
        "description": case.description,
        "location": location_json(&case.location),
        "submitter": {"name": mark(&case.submitter.name), "email": mark(&case.submitter.email), "phone": mark(&case.submitter.phone)},
        "fields": fields,
        "route": case.route,
    })
}

fn location_json(l: &Location) -> Value {
    json!({"lat": l.lat, "long": l.long, "uprn": l.uprn, "address": l.address})
}

pub(crate) fn to_row(case: &Case) -> case::ActiveModel {
    case::ActiveModel {
        id: Set(case.id.clone()),
        reference: Set(case.reference.clone()),
        jurisdiction_id: Set(case.jurisdiction_id.clone()),
        case_type_id: Set(case_type_id(&case.jurisdiction_id, &case.case_type_code)),
        agency_id: Set(case.agency_id.clone()),
        status: Set(case.status.as_str().to_string()),
        description: Set(case.description.clone()),
        lat: Set(case.location.lat),
        long: Set(case.location.long),
        uprn: Set(case.location.uprn.clone()),
        address: Set(case.location.address.clone()),
        submitter_name: Set(case.submitter.name.clone()),
        submitter_email: Set(case.submitter.email.clone()),
        submitter_phone: Set(case.submitter.phone.clone()),
        fields: Set(serde_json::to_string(&case.fields).unwrap_or_else(|_| "{}".into())),
        created_by: Set(case.created_by.clone()),
        created_at: Set(case.created_at),
        updated_at: Set(case.updated_at),
        status_at: Set(case.status_at),
        version: Set(case.version),
        route: Set(case
            .route
            .as_ref()
            .and_then(|r| serde_json::to_string(r).ok())),
        source_ref: Set(case.source_ref.clone()),
        idempotency_key: Set(None),
        media_urls: Set(serde_json::to_string(&case.media_urls).unwrap_or_else(|_| "[]".into())),
    }
}

pub(crate) fn from_row(row: case::Model) -> Result<Case, StoreError> {
    let status = CaseStatus::parse(&row.status)
        .ok_or_else(|| StoreError::corrupt("case status", &row.status))?;
    let case_type_code = type_code(&row.case_type_id).to_string();
    Ok(Case {
        fields: serde_json::from_str(&row.fields)
            .map_err(|e| StoreError::corrupt("case fields", e))?,
        id: row.id,
        reference: row.reference,
        jurisdiction_id: row.jurisdiction_id,
        case_type_code,
        agency_id: row.agency_id,
        status,
        description: row.description,
        location: Location {
            lat: row.lat,
            long: row.long,
            uprn: row.uprn,
            address: row.address,
        },
        submitter: Submitter {
            name: row.submitter_name,
            email: row.submitter_email,
            phone: row.submitter_phone,
        },
        created_at: row.created_at,
        updated_at: row.updated_at,
        status_at: row.status_at,
        version: row.version,
        route: row
            .route
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| StoreError::corrupt("case route", e))?,
        source_ref: row.source_ref,
        media_urls: serde_json::from_str(&row.media_urls)
            .map_err(|e| StoreError::corrupt("case media URLs", e))?,
        created_by: row.created_by,
    })
}

/// The code part of a stored case type id (`jurisdiction/code`).
pub(crate) fn type_code(case_type_id: &str) -> &str {
    case_type_id
        .rsplit_once('/')
        .map_or(case_type_id, |(_, c)| c)
}

pub(crate) fn event_from_row(row: case_event::Model) -> Result<CaseEvent, StoreError> {
    Ok(CaseEvent {
        kind: CaseEventKind::parse(&row.kind)
            .ok_or_else(|| StoreError::corrupt("case event kind", &row.kind))?,
        data: serde_json::from_str(&row.data)
            .map_err(|e| StoreError::corrupt("case event data", e))?,
        id: row.id,
        case_id: row.case_id,
        actor: row.actor,
        at: row.at,
    })
}
