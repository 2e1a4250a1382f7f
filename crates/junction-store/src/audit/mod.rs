//! The audit log: appending to the hash chain, group commit, queries and verification.
//!
//! The chain's head (last sequence number and hash) lives in one row that every append updates
//! inside its own transaction, so appends are serialised and the chain has no forks, whether the
//! append belongs to a state change or to the operation log, and however many processes write.

mod sqlite_writer;
mod verify;
mod writer;

use chrono::{DateTime, Utc};
use junction_domain::audit::link_canonical;
use junction_domain::{AuditEntry, ChainLink};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

use crate::entity::{audit_head, audit_log};
use crate::{Store, StoreError};

pub use verify::{VerifyReport, head, verify, verify_against};
pub use writer::AuditWriter;

/// Appends `entries` to the chain inside the caller's transaction and returns their links.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    entries: &[AuditEntry],
) -> Result<Vec<ChainLink>, DbErr> {
    let prepared: Vec<Prepared> = entries.iter().cloned().map(Prepared::new).collect();
    append_prepared(conn, &prepared).await
}

/// An entry with its canonical content already computed, so the chaining step (which is
/// sequential) does only hashing.
#[derive(Debug, Clone)]
pub struct Prepared {
    entry: AuditEntry,
    canonical: String,
}

impl Prepared {
    pub fn new(entry: AuditEntry) -> Self {
        let canonical = entry.canonical();
        Prepared { entry, canonical }
    }
}

/// Row counts for multi-row inserts: a batch is split into these sizes so that only a few
/// distinct statements exist and each stays in the prepared-statement cache.
const CHUNKS: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

async fn append_prepared<C: ConnectionTrait>(
    conn: &C,
    entries: &[Prepared],
) -> Result<Vec<ChainLink>, DbErr> {
    // The transaction's fed events take their feed positions here too, on the same locked
    // head: from the next statement to the commit, which is all that remains.
    let waiting = crate::sharing::waiting(conn).await?;
    if entries.is_empty() && waiting.is_empty() {
        return Ok(Vec::new());
    }
    let head = lock_head(conn, waiting.len() as i64).await?;
    let links = chain(entries, head.seq, &head.hash);
    let rows: Vec<audit_log::ActiveModel> = entries
        .iter()
        .zip(&links)
        .map(|(p, l)| Row::new(&p.entry, l).into())
        .collect();
    let backend = conn.get_database_backend();
    if backend == DbBackend::Postgres {
        // The head is locked from here to the commit: everything left goes in one round trip,
        // each step a data-modifying CTE (which PostgreSQL always runs to completion). Every
        // value is bound, so the text depends only on how many rows and events there are.
        let mut ctes = Vec::new();
        let mut values: Vec<sea_orm::Value> = Vec::new();
        if let Some(last) = links.last() {
            let insert = audit_log::Entity::insert_many(rows).build(backend);
            values = insert.values.map_or_else(Vec::new, |v| v.0);
            ctes.push(format!("rows AS ({})", insert.sql));
            ctes.push(format!(
                "head AS (UPDATE audit_head SET seq = ${}, hash = ${} WHERE id = 1)",
                values.len() + 1,
                values.len() + 2
            ));
            values.push(last.seq.into());
            values.push(last.hash.clone().into());
        }
        let positions =
            crate::sharing::position_statements(backend, &waiting, head.feed_seq, values.len() + 1);
        for (i, (sql, vals)) in positions.into_iter().enumerate() {
            ctes.push(format!("p{i} AS ({sql})"));
            values.extend(vals);
        }
        let last = if waiting.is_empty() {
            "SELECT 1".to_string()
        } else {
            let (sql, value) = crate::sharing::notify_statement(head.feed_seq, values.len() + 1);
            values.push(value);
            sql
        };
        let sql = format!("WITH {} {last}", ctes.join(", "));
        conn.execute_raw(sea_orm::Statement::from_sql_and_values(
            backend, sql, values,
        ))
        .await?;
    } else {
        for (sql, values) in
            crate::sharing::position_statements(backend, &waiting, head.feed_seq, 1)
        {
            conn.execute_raw(sea_orm::Statement::from_sql_and_values(
                backend, sql, values,
            ))
            .await?;
        }
        if let Some(last) = links.last() {
            insert_rows(conn, &rows).await?;
            audit_head::Entity::update(audit_head::ActiveModel {
                id: Set(1),
                seq: Set(last.seq),
                hash: Set(last.hash.clone()),
                feed_seq: sea_orm::ActiveValue::NotSet,
            })
            .exec(conn)
            .await?;
        }
    }
    Ok(links)
}

/// Locks the audit head row until the transaction ends and reads it, moving the feed position
/// on by `fed` (the head returned shows where it ends).
async fn lock_head<C: ConnectionTrait>(conn: &C, fed: i64) -> Result<audit_head::Model, DbErr> {
    let backend = conn.get_database_backend();
    let sql = if fed > 0 {
        format!(
            "UPDATE audit_head SET feed_seq = feed_seq + {fed} WHERE id = 1 RETURNING id, seq, hash, feed_seq"
        )
    } else if backend == DbBackend::Postgres {
        "SELECT id, seq, hash, feed_seq FROM audit_head WHERE id = 1 FOR UPDATE".to_string()
    } else {
        "SELECT id, seq, hash, feed_seq FROM audit_head WHERE id = 1".to_string()
    };
    audit_head::Entity::find()
        .from_raw_sql(sea_orm::Statement::from_string(backend, sql))
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_head row 1".into()))
}

/// Links `entries` one after another, starting after `seq`/`prev`.
fn chain<'a>(
    entries: impl IntoIterator<Item = &'a Prepared>,
    seq: i64,
    prev: &str,
) -> Vec<ChainLink> {
    let mut links: Vec<ChainLink> = Vec::new();
    for (i, p) in entries.into_iter().enumerate() {
        let prev_hash = links.last().map_or(prev, |l| l.hash.as_str());
        links.push(link_canonical(seq + 1 + i as i64, prev_hash, &p.canonical));
    }
    links
}

async fn insert_rows<C: ConnectionTrait>(
    conn: &C,
    rows: &[audit_log::ActiveModel],
) -> Result<(), DbErr> {
    let mut rest = rows;
    while !rest.is_empty() {
        let size = CHUNKS.into_iter().find(|c| *c <= rest.len()).unwrap_or(1);
        let (chunk, tail) = rest.split_at(size);
        audit_log::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
        rest = tail;
    }
    Ok(())
}

/// One audit row's column values, whichever way it is written.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    seq: i64,
    at: DateTime<Utc>,
    actor: String,
    agency: Option<String>,
    roles: String,
    request_id: Option<String>,
    client_addr: Option<String>,
    kind: &'static str,
    operation: Option<String>,
    object_type: Option<String>,
    object_id: Option<String>,
    change: Option<String>,
    disclosure: Option<String>,
    prev_hash: String,
    hash: String,
}

/// The columns of [`Row`], in its field order.
pub(crate) const COLUMNS: [&str; 15] = [
    "seq",
    "at",
    "actor",
    "agency",
    "roles",
    "request_id",
    "client_addr",
    "kind",
    "operation",
    "object_type",
    "object_id",
    "change",
    "disclosure",
    "prev_hash",
    "hash",
];

impl Row {
    pub(crate) fn new(entry: &AuditEntry, link: &ChainLink) -> Row {
        let change = entry.change.as_ref();
        let disclosure = entry.disclosure.as_ref();
        // A disclosure is filed under the case it disclosed, so `object` filters find it.
        let object = change
            .map(|c| (c.object_type.clone(), c.object_id.clone()))
            .or_else(|| disclosure.map(|d| ("case".to_string(), d.case_id.clone())));
        Row {
            seq: link.seq,
            at: entry.at,
            actor: entry.actor.clone(),
            agency: entry.agency.clone(),
            roles: serde_json::to_string(&entry.roles).unwrap_or_else(|_| "[]".into()),
            request_id: entry.request_id.clone(),
            client_addr: entry.client_addr.clone(),
            kind: if change.is_some() {
                "change"
            } else if disclosure.is_some() {
                "disclosure"
            } else {
                "operation"
            },
            operation: entry.operation.as_ref().map(|o| o.canonical_json()),
            object_type: object.as_ref().map(|o| o.0.clone()),
            object_id: object.map(|o| o.1),
            change: change.and_then(|c| serde_json::to_string(c).ok()),
            disclosure: disclosure.and_then(|d| serde_json::to_string(d).ok()),
            prev_hash: link.prev_hash.clone(),
            hash: link.hash.clone(),
        }
    }
}

impl From<Row> for audit_log::ActiveModel {
    fn from(row: Row) -> Self {
        audit_log::ActiveModel {
            seq: Set(row.seq),
            at: Set(row.at),
            actor: Set(row.actor),
            agency: Set(row.agency),
            roles: Set(row.roles),
            request_id: Set(row.request_id),
            client_addr: Set(row.client_addr),
            kind: Set(row.kind.into()),
            operation: Set(row.operation),
            object_type: Set(row.object_type),
            object_id: Set(row.object_id),
            change: Set(row.change),
            disclosure: Set(row.disclosure),
            prev_hash: Set(row.prev_hash),
            hash: Set(row.hash),
        }
    }
}

/// A nullable JSON column, read back; `what` names it if it does not parse.
fn optional_json<T: serde::de::DeserializeOwned>(
    text: Option<&str>,
    what: &'static str,
) -> Result<Option<T>, StoreError> {
    text.map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::corrupt(what, e))
}

pub(crate) fn from_row(row: audit_log::Model) -> Result<StoredAudit, StoreError> {
    let roles =
        serde_json::from_str(&row.roles).map_err(|e| StoreError::corrupt("audit roles", e))?;
    let operation = optional_json(row.operation.as_deref(), "audit operation")?;
    let change = optional_json(row.change.as_deref(), "audit change")?;
    let disclosure = optional_json(row.disclosure.as_deref(), "audit disclosure")?;
    Ok(StoredAudit {
        link: ChainLink {
            seq: row.seq,
            prev_hash: row.prev_hash,
            hash: row.hash,
        },
        entry: AuditEntry {
            at: row.at,
            actor: row.actor,
            agency: row.agency,
            roles,
            request_id: row.request_id,
            client_addr: row.client_addr,
            operation,
            change,
            disclosure,
        },
    })
}

/// An entry as stored, with its place in the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAudit {
    pub link: ChainLink,
    pub entry: AuditEntry,
}

/// What to look for in the audit log; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    pub request_id: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// Newest first: up to `first` entries older than `before_seq`, and whether more follow.
pub async fn list(
    store: &Store,
    filter: &AuditFilter,
    first: u64,
    before_seq: Option<i64>,
) -> Result<(Vec<StoredAudit>, bool), StoreError> {
    let mut q = audit_log::Entity::find();
    if let Some(actor) = &filter.actor {
        q = q.filter(audit_log::Column::Actor.eq(actor.as_str()));
    }
    if let Some(t) = &filter.object_type {
        q = q.filter(audit_log::Column::ObjectType.eq(t.as_str()));
    }
    if let Some(id) = &filter.object_id {
        q = q.filter(audit_log::Column::ObjectId.eq(id.as_str()));
    }
    if let Some(id) = &filter.request_id {
        q = q.filter(audit_log::Column::RequestId.eq(id.as_str()));
    }
    if let Some(from) = filter.from {
        q = q.filter(audit_log::Column::At.gte(from));
    }
    if let Some(to) = filter.to {
        q = q.filter(audit_log::Column::At.lt(to));
    }
    if let Some(seq) = before_seq {
        q = q.filter(audit_log::Column::Seq.lt(seq));
    }
    let rows = q
        .order_by_desc(audit_log::Column::Seq)
        .limit(first + 1)
        .all(store.conn())
        .await?;
    let more = rows.len() as u64 > first;
    let entries = rows
        .into_iter()
        .take(first as usize)
        .map(from_row)
        .collect::<Result<_, _>>()?;
    Ok((entries, more))
}

/// The number of audit records.
pub async fn count(store: &Store) -> Result<u64, StoreError> {
    use sea_orm::PaginatorTrait;
    Ok(audit_log::Entity::find().count(store.conn()).await?)
}
