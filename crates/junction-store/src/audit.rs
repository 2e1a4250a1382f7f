//! The audit log: appending to the hash chain, group commit, queries and verification.
//!
//! The chain's head (last sequence number and hash) lives in one row that every append updates
//! inside its own transaction, so appends are serialised and the chain has no forks, whether the
//! append belongs to a state change or to the operation log, and however many processes write.

use std::time::Duration;

use chrono::{DateTime, Utc};
use junction_domain::audit::{link_canonical, verify_link};
use junction_domain::{AuditEntry, ChainLink};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, Statement,
};
use tokio::sync::{mpsc, oneshot};

use crate::entity::{audit_head, audit_log};
use crate::{Backend, Store, StoreError};

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
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let mut head_query = audit_head::Entity::find_by_id(1);
    if conn.get_database_backend() == DbBackend::Postgres {
        head_query = head_query.lock_exclusive();
    }
    let head = head_query
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("audit_head row 1".into()))?;
    let links = chain(entries, head.seq, &head.hash);
    let rows: Vec<audit_log::ActiveModel> = entries
        .iter()
        .zip(&links)
        .map(|(p, l)| to_row(&p.entry, l))
        .collect();
    insert_rows(conn, &rows).await?;
    let last = links.last().expect("entries is not empty");
    audit_head::Entity::update(audit_head::ActiveModel {
        id: Set(1),
        seq: Set(last.seq),
        hash: Set(last.hash.clone()),
        feed_seq: sea_orm::ActiveValue::NotSet,
    })
    .exec(conn)
    .await?;
    Ok(links)
}

/// Links `entries` one after another, starting after `seq`/`prev`.
fn chain(entries: &[Prepared], seq: i64, prev: &str) -> Vec<ChainLink> {
    let mut links: Vec<ChainLink> = Vec::with_capacity(entries.len());
    for (i, p) in entries.iter().enumerate() {
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

fn to_row(entry: &AuditEntry, link: &ChainLink) -> audit_log::ActiveModel {
    let change = entry.change.as_ref();
    let disclosure = entry.disclosure.as_ref();
    // A disclosure is filed under the case it disclosed, so `object` filters find it.
    let object = change
        .map(|c| (c.object_type.clone(), c.object_id.clone()))
        .or_else(|| disclosure.map(|d| ("case".to_string(), d.case_id.clone())));
    audit_log::ActiveModel {
        seq: Set(link.seq),
        at: Set(entry.at),
        actor: Set(entry.actor.clone()),
        agency: Set(entry.agency.clone()),
        roles: Set(serde_json::to_string(&entry.roles).unwrap_or_else(|_| "[]".into())),
        request_id: Set(entry.request_id.clone()),
        client_addr: Set(entry.client_addr.clone()),
        kind: Set(if change.is_some() {
            "change"
        } else if disclosure.is_some() {
            "disclosure"
        } else {
            "operation"
        }
        .into()),
        operation: Set(entry
            .operation
            .as_ref()
            .and_then(|o| serde_json::to_string(o).ok())),
        object_type: Set(object.as_ref().map(|o| o.0.clone())),
        object_id: Set(object.map(|o| o.1)),
        change: Set(change.and_then(|c| serde_json::to_string(c).ok())),
        disclosure: Set(disclosure.and_then(|d| serde_json::to_string(d).ok())),
        prev_hash: Set(link.prev_hash.clone()),
        hash: Set(link.hash.clone()),
    }
}

fn from_row(row: audit_log::Model) -> Result<StoredAudit, StoreError> {
    let roles =
        serde_json::from_str(&row.roles).map_err(|e| StoreError::corrupt("audit roles", e))?;
    let operation = row
        .operation
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::corrupt("audit operation", e))?;
    let change = row
        .change
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::corrupt("audit change", e))?;
    let disclosure = row
        .disclosure
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| StoreError::corrupt("audit disclosure", e))?;
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

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub checked: u64,
    /// The first record that does not verify, and why.
    pub first_bad: Option<(i64, String)>,
}

/// Walks the chain from the first record, recomputing every hash.
pub async fn verify(store: &Store) -> Result<VerifyReport, StoreError> {
    let mut expected_prev = junction_domain::GENESIS_HASH.to_string();
    let mut expected_seq = 1i64;
    let mut checked = 0u64;
    loop {
        let page = audit_log::Entity::find()
            .filter(audit_log::Column::Seq.gte(expected_seq))
            .order_by_asc(audit_log::Column::Seq)
            .limit(2_000)
            .all(store.conn())
            .await?;
        if page.is_empty() {
            break;
        }
        for row in page {
            let seq = row.seq;
            if seq != expected_seq {
                let why = format!("record {expected_seq} is missing (next present is {seq})");
                return Ok(VerifyReport {
                    checked,
                    first_bad: Some((expected_seq, why)),
                });
            }
            let stored = match from_row(row) {
                Ok(s) => s,
                Err(e) => {
                    return Ok(VerifyReport {
                        checked,
                        first_bad: Some((seq, e.to_string())),
                    });
                }
            };
            if let Err(why) = verify_link(&expected_prev, &stored.entry, &stored.link) {
                return Ok(VerifyReport {
                    checked,
                    first_bad: Some((seq, why)),
                });
            }
            expected_prev = stored.link.hash;
            expected_seq += 1;
            checked += 1;
        }
    }
    let head = audit_head::Entity::find_by_id(1).one(store.conn()).await?;
    if let Some(head) = head
        && (head.seq != expected_seq - 1 || head.hash != expected_prev)
    {
        let why = format!(
            "chain head says record {} with hash {}, but the log ends at record {} with hash {expected_prev}",
            head.seq,
            head.hash,
            expected_seq - 1
        );
        return Ok(VerifyReport {
            checked,
            first_bad: Some((head.seq, why)),
        });
    }
    Ok(VerifyReport {
        checked,
        first_bad: None,
    })
}

struct Pending {
    entry: Prepared,
    done: oneshot::Sender<Result<(), ()>>,
}

/// Records operation entries with group commit: entries that arrive while one batch is being
/// written go into the next, one transaction (and one disk flush) for the lot. `record` returns
/// only once its entry is committed.
#[derive(Clone, Debug)]
pub struct AuditWriter {
    tx: mpsc::Sender<Pending>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("actor", &self.entry.entry.actor)
            .finish()
    }
}

/// Most entries written in one transaction.
const MAX_BATCH: usize = 512;

/// How many times the writer yields to let more entries arrive before it writes.
const COALESCE_YIELDS: usize = 4;

impl AuditWriter {
    /// Starts the writer. It stops once every clone of the returned writer is dropped and the
    /// entries already sent are committed.
    pub fn start(store: Store) -> (AuditWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8_192);
        let task = tokio::spawn(run(store, rx));
        (AuditWriter { tx }, task)
    }

    /// Appends entries to the chain (in one batch when they arrive together) and waits until
    /// all are durable.
    pub async fn record_all(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError> {
        let mut waits = Vec::with_capacity(entries.len());
        for entry in entries {
            let (done, wait) = oneshot::channel();
            self.tx
                .send(Pending {
                    entry: Prepared::new(entry),
                    done,
                })
                .await
                .map_err(|_| StoreError::AuditUnavailable)?;
            waits.push(wait);
        }
        for wait in waits {
            if !matches!(wait.await, Ok(Ok(()))) {
                return Err(StoreError::AuditUnavailable);
            }
        }
        Ok(())
    }

    /// Appends one entry to the chain and waits until it is durable.
    pub async fn record(&self, entry: AuditEntry) -> Result<(), StoreError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Pending {
                entry: Prepared::new(entry),
                done,
            })
            .await
            .map_err(|_| StoreError::AuditUnavailable)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(StoreError::AuditUnavailable),
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<Pending>) {
    let mut batch: Vec<Pending> = Vec::with_capacity(MAX_BATCH);
    let mut head: Head = None;
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        // Let tasks that are already running finish their requests and join this batch: one
        // flush for many records is what makes auditing cheap under load. When nothing else
        // is runnable this costs a few microseconds.
        for _ in 0..COALESCE_YIELDS {
            if batch.len() >= MAX_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(p) => batch.push(p),
                    Err(_) => break,
                }
            }
        }
        let entries: Vec<Prepared> = batch.iter().map(|p| p.entry.clone()).collect();
        let started = std::time::Instant::now();
        let mut result = write_batch(&store, &entries, &mut head).await;
        if let Err(e) = &result {
            // One retry after a pause rides out a brief lock or connection hiccup.
            tracing::warn!(error = %e, entries = entries.len(), "audit batch failed; retrying once");
            tokio::time::sleep(Duration::from_millis(50)).await;
            result = write_batch(&store, &entries, &mut head).await;
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, entries = entries.len(), "audit batch could not be written");
        }
        metrics::histogram!("junction_audit_batch_size").record(entries.len() as f64);
        metrics::histogram!("junction_audit_batch_seconds").record(started.elapsed().as_secs_f64());
        for pending in batch.drain(..) {
            let _ = pending
                .done
                .send(result.as_ref().map(|_| ()).map_err(|_| ()));
        }
    }
}

/// The chain head as this writer last left it.
type Head = Option<(i64, String)>;

/// Writes one batch. With a cached head the batch costs one round trip on PostgreSQL (and no
/// head read on SQLite); if another appender moved the head meanwhile, nothing is written by
/// that attempt and the batch goes the locked way instead.
async fn write_batch(store: &Store, entries: &[Prepared], head: &mut Head) -> Result<(), DbErr> {
    if let Some((seq, hash)) = head.take()
        && let Some(new_head) = write_on_cached_head(store, entries, seq, &hash).await?
    {
        *head = Some(new_head);
        return Ok(());
    }
    let txn = store.begin_write().await?;
    let links = append_prepared(&*txn, entries).await?;
    txn.commit().await?;
    *head = links.last().map(|l| (l.seq, l.hash.clone()));
    Ok(())
}

/// Appends after the cached head, guarded so that it writes nothing unless the head is still
/// `seq`/`hash`. Returns the new head, or `None` when the head had moved.
async fn write_on_cached_head(
    store: &Store,
    entries: &[Prepared],
    seq: i64,
    hash: &str,
) -> Result<Head, DbErr> {
    let links = chain(entries, seq, hash);
    let last = links.last().expect("batches are never empty");
    let new_head = Some((last.seq, last.hash.clone()));
    match store.backend() {
        Backend::Postgres => {
            let statement = guarded_insert_postgres(entries, &links, seq, hash);
            let written = store.conn().execute_raw(statement).await?.rows_affected();
            Ok(if written == entries.len() as u64 {
                new_head
            } else {
                None
            })
        }
        Backend::Sqlite => {
            let txn = store.begin_write().await?;
            let moved = audit_head::Entity::update_many()
                .col_expr(audit_head::Column::Seq, Expr::value(last.seq))
                .col_expr(audit_head::Column::Hash, Expr::value(last.hash.clone()))
                .filter(audit_head::Column::Id.eq(1))
                .filter(audit_head::Column::Seq.eq(seq))
                .filter(audit_head::Column::Hash.eq(hash))
                .exec(&*txn)
                .await?;
            if moved.rows_affected != 1 {
                return Ok(None); // dropping the transaction rolls it back
            }
            let rows: Vec<audit_log::ActiveModel> = entries
                .iter()
                .zip(&links)
                .map(|(p, l)| to_row(&p.entry, l))
                .collect();
            insert_rows(&*txn, &rows).await?;
            txn.commit().await?;
            Ok(new_head)
        }
    }
}

/// One statement that moves the head from `seq`/`hash` to the batch's last link and inserts
/// the batch, or does neither.
fn guarded_insert_postgres(
    entries: &[Prepared],
    links: &[ChainLink],
    seq: i64,
    hash: &str,
) -> Statement {
    const COLUMNS: &str = "seq, at, actor, agency, roles, request_id, client_addr, kind, operation, \
                           object_type, object_id, change, disclosure, prev_hash, hash";
    let last = links.last().expect("batches are never empty");
    let mut values: Vec<sea_orm::Value> = vec![
        last.seq.into(),
        last.hash.clone().into(),
        seq.into(),
        hash.to_string().into(),
    ];
    let mut tuples = Vec::with_capacity(entries.len());
    for (p, link) in entries.iter().zip(links) {
        let base = values.len();
        // The same row the locked path inserts, so the two paths cannot drift apart.
        let row = to_row(&p.entry, link);
        values.extend(
            [
                row.seq.into_value(),
                row.at.into_value(),
                row.actor.into_value(),
                row.agency.into_value(),
                row.roles.into_value(),
                row.request_id.into_value(),
                row.client_addr.into_value(),
                row.kind.into_value(),
                row.operation.into_value(),
                row.object_type.into_value(),
                row.object_id.into_value(),
                row.change.into_value(),
                row.disclosure.into_value(),
                row.prev_hash.into_value(),
                row.hash.into_value(),
            ]
            .into_iter()
            .map(|v| v.expect("to_row sets every column")),
        );
        let params: Vec<String> = (base + 1..=values.len()).map(|n| format!("${n}")).collect();
        tuples.push(format!("({})", params.join(", ")));
    }
    let sql = format!(
        "WITH head AS (UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1 AND seq = $3 AND hash = $4 RETURNING id) \
         INSERT INTO audit_log ({COLUMNS}) SELECT v.* FROM (VALUES {}) AS v({COLUMNS}) WHERE EXISTS (SELECT 1 FROM head)",
        tuples.join(", ")
    );
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}
