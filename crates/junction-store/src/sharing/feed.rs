//! The partner feed: positions in commit order, the wait for new ones, and reading them.

use std::collections::BTreeMap;

use junction_domain::{Case, CaseEvent};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    Statement,
};

use crate::cases::from_row as case_from_row;
use crate::entity::{audit_head, case, case_event, case_share};
use crate::{Store, StoreError};

/// Takes the next feed position inside the caller's transaction. The update locks the audit
/// head row until the transaction ends, so positions are handed out in commit order. On
/// PostgreSQL the commit also notifies listeners in every Junction process.
pub(crate) async fn next_feed_seq<C: ConnectionTrait>(conn: &C) -> Result<i64, StoreError> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_string(
            backend,
            "UPDATE audit_head SET feed_seq = feed_seq + 1 WHERE id = 1 RETURNING feed_seq",
        ))
        .await?
        .ok_or_else(|| StoreError::corrupt("audit head", "no row"))?;
    let seq: i64 = row.try_get("", "feed_seq")?;
    if backend == DbBackend::Postgres {
        conn.execute_raw(Statement::from_string(
            backend,
            format!("SELECT pg_notify('{FEED_CHANNEL}', '{seq}')"),
        ))
        .await?;
    }
    Ok(seq)
}

/// The PostgreSQL channel that announces new feed positions.
pub const FEED_CHANNEL: &str = "junction_feed";

/// Waits for new feed events: a PostgreSQL `NOTIFY` from any process (with a slow poll as a
/// safety net), or on SQLite a short poll.
pub struct FeedWaiter {
    pool: Option<sqlx::PgPool>,
    listener: Option<sqlx::postgres::PgListener>,
}

/// How often SQLite (and PostgreSQL, as a safety net) looks for new events.
const SQLITE_POLL: std::time::Duration = std::time::Duration::from_millis(10);
const POSTGRES_POLL: std::time::Duration = std::time::Duration::from_secs(1);

impl FeedWaiter {
    pub async fn new(store: &Store) -> FeedWaiter {
        let pool = store.pg_pool();
        let listener = match &pool {
            Some(p) => listen(p).await,
            None => None,
        };
        FeedWaiter { pool, listener }
    }

    /// Returns when there may be new events.
    pub async fn wait(&mut self) {
        let Some(pool) = &self.pool else {
            tokio::time::sleep(SQLITE_POLL).await;
            return;
        };
        match self.listener.as_mut() {
            Some(l) => tokio::select! {
                n = l.recv() => if let Err(e) = n {
                    tracing::warn!(error = %e, "feed LISTEN connection lost; reconnecting");
                    self.listener = listen(pool).await;
                },
                _ = tokio::time::sleep(POSTGRES_POLL) => {}
            },
            None => {
                tokio::time::sleep(POSTGRES_POLL).await;
                self.listener = listen(pool).await;
            }
        }
    }
}

async fn listen(pool: &sqlx::PgPool) -> Option<sqlx::postgres::PgListener> {
    let mut l = match sqlx::postgres::PgListener::connect_with(pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "feed LISTEN connection failed; polling instead");
            return None;
        }
    };
    match l.listen(FEED_CHANNEL).await {
        Ok(()) => Some(l),
        Err(e) => {
            tracing::warn!(error = %e, "feed LISTEN failed; polling instead");
            None
        }
    }
}

/// One event in the partner feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    pub seq: i64,
    pub event: CaseEvent,
}

/// The feed's last position.
pub async fn feed_head(store: &Store) -> Result<i64, StoreError> {
    Ok(audit_head::Entity::find_by_id(1)
        .one(store.conn())
        .await?
        .map_or(0, |h| h.feed_seq))
}

/// Up to `limit` feed entries after position `after`, in order, optionally only for cases
/// shared live with `agency`.
pub async fn feed_after(
    store: &Store,
    after: i64,
    limit: u64,
    agency: Option<&str>,
) -> Result<Vec<FeedEntry>, StoreError> {
    let mut q = case_event::Entity::find()
        .filter(case_event::Column::FeedSeq.gt(after))
        .order_by_asc(case_event::Column::FeedSeq)
        .limit(limit);
    if let Some(agency) = agency {
        q = q.filter(
            case_event::Column::CaseId.in_subquery(
                Query::select()
                    .column(case_share::Column::CaseId)
                    .from(case_share::Entity)
                    .and_where(case_share::Column::AgencyId.eq(agency))
                    .and_where(case_share::Column::UnsharedAt.is_null())
                    .to_owned(),
            ),
        );
    }
    q.all(store.conn())
        .await?
        .into_iter()
        .map(|m| {
            let seq = m.feed_seq.unwrap_or_default();
            crate::cases::event_from_row(m).map(|event| FeedEntry { seq, event })
        })
        .collect()
}

/// Cases by id, for the feed (one read for a batch of events).
pub async fn cases_by_id(
    store: &Store,
    ids: &[String],
) -> Result<BTreeMap<String, Case>, StoreError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    case::Entity::find()
        .filter(case::Column::Id.is_in(ids.to_vec()))
        .all(store.conn())
        .await?
        .into_iter()
        .map(|m| case_from_row(m).map(|c| (c.id.clone(), c)))
        .collect()
}
