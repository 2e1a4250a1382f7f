//! Files that arrived with a case, stored in the case's own transaction, and photos fetched
//! later from the addresses a front-end gave.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::audit::sha256_hex;
use junction_domain::{Actor, Attachment, CaseEventKind, NewAttachment, RefusedFile};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::attachment;
use crate::{Store, StoreError};

/// Stores `files` for case `case_id` inside the caller's transaction.
pub(crate) async fn insert<C: ConnectionTrait>(
    conn: &C,
    case_id: &str,
    files: &[NewAttachment],
    now: DateTime<Utc>,
) -> Result<Vec<Attachment>, StoreError> {
    let mut stored = Vec::with_capacity(files.len());
    for f in files {
        let sha256 = sha256_hex(&f.data);
        let row = attachment::ActiveModel {
            case_id: Set(case_id.to_string()),
            part: Set(f.part.clone()),
            file_name: Set(f.file_name.clone()),
            content_type: Set(f.content_type.clone()),
            size: Set(f.data.len() as i64),
            sha256: Set(sha256.clone()),
            data: Set(f.data.clone()),
            created_at: Set(now),
            ..Default::default()
        };
        let id = attachment::Entity::insert(row)
            .exec(conn)
            .await?
            .last_insert_id;
        stored.push(Attachment {
            id,
            case_id: case_id.to_string(),
            part: f.part.clone(),
            file_name: f.file_name.clone(),
            content_type: f.content_type.clone(),
            size: f.data.len() as i64,
            sha256,
            created_at: now,
        });
    }
    Ok(stored)
}

/// Records on case `case_id`, one `file_refused` event each, the files that arrived with it
/// but were not kept, inside the caller's transaction.
pub(crate) async fn record_refused<C: ConnectionTrait>(
    conn: &C,
    case_id: &str,
    refused: &[RefusedFile],
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    for file in refused {
        let data = serde_json::to_value(file).unwrap_or_default();
        crate::cases::insert_event(conn, case_id, CaseEventKind::FileRefused, actor, now, data)
            .await?;
    }
    Ok(())
}

type Row = (
    i64,
    String,
    String,
    String,
    String,
    i64,
    String,
    DateTime<Utc>,
);

fn described(r: Row) -> Attachment {
    let (id, case_id, part, file_name, content_type, size, sha256, created_at) = r;
    Attachment {
        id,
        case_id,
        part,
        file_name,
        content_type,
        size,
        sha256,
        created_at,
    }
}

fn without_data() -> sea_orm::Select<attachment::Entity> {
    use attachment::Column as C;
    attachment::Entity::find().select_only().columns([
        C::Id,
        C::CaseId,
        C::Part,
        C::FileName,
        C::ContentType,
        C::Size,
        C::Sha256,
        C::CreatedAt,
    ])
}

/// The files of a case, in the order they arrived, without their bytes.
pub async fn of_case(store: &Store, case_id: &str) -> Result<Vec<Attachment>, StoreError> {
    Ok(without_data()
        .filter(attachment::Column::CaseId.eq(case_id))
        .order_by_asc(attachment::Column::Id)
        .into_tuple::<Row>()
        .all(store.conn())
        .await?
        .into_iter()
        .map(described)
        .collect())
}

/// The files of a case with their bytes, in the order they arrived: one read.
pub async fn of_case_with_data(
    store: &Store,
    case_id: &str,
) -> Result<Vec<(Attachment, Vec<u8>)>, StoreError> {
    Ok(attachment::Entity::find()
        .filter(attachment::Column::CaseId.eq(case_id))
        .order_by_asc(attachment::Column::Id)
        .all(store.conn())
        .await?
        .into_iter()
        .map(with_data)
        .collect())
}

/// One file with its bytes.
pub async fn get(store: &Store, id: i64) -> Result<Option<(Attachment, Vec<u8>)>, StoreError> {
    Ok(attachment::Entity::find_by_id(id)
        .one(store.conn())
        .await?
        .map(with_data))
}

fn with_data(m: attachment::Model) -> (Attachment, Vec<u8>) {
    (
        Attachment {
            id: m.id,
            case_id: m.case_id,
            part: m.part,
            file_name: m.file_name,
            content_type: m.content_type,
            size: m.size,
            sha256: m.sha256,
            created_at: m.created_at,
        },
        m.data,
    )
}

/// Keeps a photo fetched from an address the front-end gave, as part `file.part` of case
/// `case_id`, with an audit entry naming the address and the file's digest. A part already
/// kept (another delivery of the same case fetched it first) is left as it is.
pub async fn keep_fetched(
    store: &Store,
    actor: &Actor,
    case_id: &str,
    file: NewAttachment,
    url: &str,
) -> Result<(), StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let already = attachment::Entity::find()
        .filter(attachment::Column::CaseId.eq(case_id))
        .filter(attachment::Column::Part.eq(file.part.as_str()))
        .one(&*txn)
        .await?;
    if already.is_some() {
        return Ok(());
    }
    let stored = insert(&*txn, case_id, std::slice::from_ref(&file), now).await?;
    let after: Vec<serde_json::Value> = stored
        .iter()
        .map(|a| {
            serde_json::json!({"url": url, "id": a.id, "part": a.part, "size": a.size, "sha256": a.sha256})
        })
        .collect();
    crate::audit::append(
        &*txn,
        &[actor.change(
            "case",
            case_id,
            "fetch_media",
            serde_json::Value::Null,
            serde_json::json!({ "attachments": after }),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(())
}
