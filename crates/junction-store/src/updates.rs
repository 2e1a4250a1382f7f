//! Case updates: status changes and comments that front-ends read back over Open311
//! `servicerequestupdates`, and that front-ends and back-ends send in. An update a source sends
//! again under the same update id is answered with the update already stored and has no
//! effect; the same id with other content is refused.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::{Actor, CaseEventKind, CaseStatus, CaseUpdate, NewAttachment, RefusedFile};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde_json::{Value, json};

use crate::cases::{insert_event, load_for_update};
use crate::entity::{case, case_update};
use crate::{Store, StoreError, audit};

/// The source of Junction's own status changes; their text is the status's public notice.
pub const JUNCTION_SOURCE: &str = "junction";

/// An update as received.
#[derive(Debug, Clone, Default)]
pub struct NewUpdate {
    pub source: String,
    pub source_update_id: Option<String>,
    pub status: Option<CaseStatus>,
    pub external_status_code: Option<String>,
    pub description: String,
    pub media_urls: Vec<String>,
    pub updated_at: Option<DateTime<Utc>>,
    /// Files uploaded with the update; kept with the case.
    pub files: Vec<NewAttachment>,
    /// Files that came with the update but were over a limit; recorded on the case.
    pub refused_files: Vec<RefusedFile>,
}

/// Records a front-end's `update` on case `case_ref` (id or reference): the citizen's word,
/// kept in the case's history; it never moves the case's status (back-ends' updates do, through
/// [`crate::inbound`]). A repeat of a source's update id is answered with the stored update, or
/// refused as a conflict if its content differs.
pub async fn record(
    store: &Store,
    actor: &Actor,
    case_ref: &str,
    update: NewUpdate,
) -> Result<CaseUpdate, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let case = load_for_update(&*txn, case_ref).await?;
    if let Some(source_id) = &update.source_update_id {
        let seen = case_update::Entity::find()
            .filter(case_update::Column::Source.eq(update.source.as_str()))
            .filter(case_update::Column::SourceUpdateId.eq(source_id.as_str()))
            .one(&*txn)
            .await?;
        if let Some(seen) = seen {
            // A client that lost the answer sends the same update again: it gets the update it
            // already made. The same id with other content is a conflict.
            let same = seen.description == update.description
                && seen.status.as_deref() == update.status.map(CaseStatus::as_str)
                && seen.external_status_code == update.external_status_code;
            if same && seen.case_id == case.id {
                return Ok(to_update(seen, CaseOf::Case(&case)));
            }
            return Err(StoreError::Conflict(format!(
                "update `{source_id}` already exists with other content"
            )));
        }
    }
    let at = update.updated_at.unwrap_or(now).trunc_subsecs(0);
    let row = insert_row(&*txn, &case.id, &update, case.status, at, now).await?;
    let files = crate::attachments::insert(&*txn, &case.id, &update.files, now).await?;
    crate::attachments::record_refused(&*txn, &case.id, &update.refused_files, actor, now).await?;
    let data = json!({
        "update": row.id,
        "source": update.source,
        "source_update_id": update.source_update_id,
        "status": update.status.map(CaseStatus::as_str),
        "status_applied": false,
        "external_status_code": update.external_status_code,
    });
    // The event carries the update's text for the case history and partners; the audit entry
    // does not, so the log does not become a copy of what citizens wrote.
    let mut event_data = data.clone();
    event_data["description"] = Value::from(update.description.clone());
    insert_event(
        &*txn,
        &case.id,
        CaseEventKind::UpdateReceived,
        actor,
        now,
        event_data,
    )
    .await?;
    // The files are named in the audit entry by digest; the event leaves them out.
    let mut data = data;
    if !files.is_empty() {
        data["attachments"] = files
            .iter()
            .map(|a| json!({"id": a.id, "part": a.part, "fileName": a.file_name, "size": a.size, "sha256": a.sha256}))
            .collect();
    }
    if !update.refused_files.is_empty() {
        data["refusedFiles"] = json!(update.refused_files);
    }
    audit::append(
        &*txn,
        &[actor.change(
            "case",
            &case.id,
            "record_update",
            json!({"status": case.status.as_str()}),
            data,
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(to_update(row, CaseOf::Case(&case)))
}

pub(crate) async fn insert_row<C: ConnectionTrait>(
    conn: &C,
    case_id: &str,
    update: &NewUpdate,
    case_status: CaseStatus,
    at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<case_update::Model, StoreError> {
    let model = case_update::ActiveModel {
        case_id: Set(case_id.to_string()),
        source: Set(update.source.clone()),
        source_update_id: Set(update.source_update_id.clone()),
        status: Set(update.status.map(|s| s.as_str().to_string())),
        case_status: Set(Some(case_status.as_str().to_string())),
        external_status_code: Set(update.external_status_code.clone()),
        description: Set(update.description.clone()),
        media_urls: Set(serde_json::to_string(&update.media_urls).unwrap_or_else(|_| "[]".into())),
        updated_at: Set(at),
        created_at: Set(now),
        ..Default::default()
    };
    let id = case_update::Entity::insert(model.clone())
        .exec(conn)
        .await?
        .last_insert_id;
    Ok(case_update::Model {
        id,
        case_id: case_id.to_string(),
        source: update.source.clone(),
        source_update_id: update.source_update_id.clone(),
        status: update.status.map(|s| s.as_str().to_string()),
        case_status: Some(case_status.as_str().to_string()),
        external_status_code: update.external_status_code.clone(),
        description: update.description.clone(),
        media_urls: serde_json::to_string(&update.media_urls).unwrap_or_else(|_| "[]".into()),
        updated_at: at,
        created_at: now,
    })
}

/// An update of `case`, given as its stored row or as the domain's case.
fn to_update(row: case_update::Model, case: CaseOf<'_>) -> CaseUpdate {
    let (reference, source_ref, created_by, type_code, now_status) = match case {
        CaseOf::Row(c) => (
            &c.reference,
            &c.source_ref,
            &c.created_by,
            crate::cases::type_code(&c.case_type_id),
            CaseStatus::parse(&c.status).unwrap_or(CaseStatus::Open),
        ),
        CaseOf::Case(c) => (
            &c.reference,
            &c.source_ref,
            &c.created_by,
            c.case_type_code.as_str(),
            c.status,
        ),
    };
    CaseUpdate {
        id: row.id,
        case_id: row.case_id,
        case_reference: reference.clone(),
        case_source_ref: source_ref.clone(),
        case_created_by: created_by.clone(),
        case_type_code: type_code.to_string(),
        source: row.source,
        source_update_id: row.source_update_id,
        status: row.status.as_deref().and_then(CaseStatus::parse),
        case_status: row
            .case_status
            .as_deref()
            .and_then(CaseStatus::parse)
            .unwrap_or(now_status),
        external_status_code: row.external_status_code,
        description: row.description,
        media_urls: serde_json::from_str(&row.media_urls).unwrap_or_default(),
        updated_at: row.updated_at,
        created_at: row.created_at,
    }
}

/// Updates on cases of `jurisdiction_id` and one of `case_types` that happened in
/// `[from, to]`, oldest first, leaving out those that came from `exclude_source` (a front-end
/// is not sent its own updates back).
pub async fn in_window(
    store: &Store,
    jurisdiction_id: &str,
    case_types: &[String],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    exclude_source: Option<&str>,
    limit: u64,
) -> Result<Vec<CaseUpdate>, StoreError> {
    let type_ids: Vec<String> = case_types
        .iter()
        .map(|c| crate::catalogue::case_type_id(jurisdiction_id, c))
        .collect();
    let of_types = sea_orm::sea_query::Query::select()
        .column(case::Column::Id)
        .from(case::Entity)
        .and_where(case::Column::JurisdictionId.eq(jurisdiction_id))
        .and_where(case::Column::CaseTypeId.is_in(type_ids))
        .to_owned();
    let mut q = case_update::Entity::find()
        .filter(case_update::Column::CaseId.in_subquery(of_types))
        .filter(case_update::Column::UpdatedAt.gte(from))
        .filter(case_update::Column::UpdatedAt.lte(to));
    if let Some(source) = exclude_source {
        q = q.filter(case_update::Column::Source.ne(source));
    }
    let rows = q
        .order_by_asc(case_update::Column::UpdatedAt)
        .order_by_asc(case_update::Column::Id)
        .limit(limit)
        .all(store.conn())
        .await?;
    let mut ids: Vec<&str> = rows.iter().map(|r| r.case_id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let cases = case::Entity::find()
        .filter(case::Column::Id.is_in(ids))
        .filter(case::Column::JurisdictionId.eq(jurisdiction_id))
        .all(store.conn())
        .await?;
    let by_id: std::collections::HashMap<&str, &case::Model> =
        cases.iter().map(|c| (c.id.as_str(), c)).collect();
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let c = by_id.get(r.case_id.as_str())?;
            Some(to_update(r, CaseOf::Row(c)))
        })
        .collect())
}

/// A case's updates, oldest first.
/// The update `source` sent under its own id `source_update_id`, if recorded.
pub async fn by_source_id(
    store: &Store,
    source: &str,
    source_update_id: &str,
) -> Result<Option<CaseUpdate>, StoreError> {
    let Some(row) = case_update::Entity::find()
        .filter(case_update::Column::Source.eq(source))
        .filter(case_update::Column::SourceUpdateId.eq(source_update_id))
        .one(store.conn())
        .await?
    else {
        return Ok(None);
    };
    let Some(case) = case::Entity::find_by_id(row.case_id.clone())
        .one(store.conn())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(to_update(row, CaseOf::Row(&case))))
}

pub async fn for_case(store: &Store, case_id: &str) -> Result<Vec<CaseUpdate>, StoreError> {
    let Some(c) = case::Entity::find_by_id(case_id).one(store.conn()).await? else {
        return Ok(Vec::new());
    };
    let rows = case_update::Entity::find()
        .filter(case_update::Column::CaseId.eq(case_id))
        .order_by_asc(case_update::Column::Id)
        .all(store.conn())
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| to_update(r, CaseOf::Row(&c)))
        .collect())
}

/// The case an update belongs to, as it is at hand.
enum CaseOf<'a> {
    Row(&'a case::Model),
    Case(&'a junction_domain::Case),
}
