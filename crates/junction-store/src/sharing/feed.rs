//! The partner feed: positions in commit order, the wait for new ones, and reading them.

use std::collections::BTreeMap;

use junction_domain::{Case, CaseEvent};
use sea_orm::sea_query::Query;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use crate::cases::from_row as case_from_row;
use crate::entity::{audit_head, case, case_event, case_share};
use crate::{Store, StoreError};

/// A fed event is written with a unique negative placeholder for its feed position, and
/// [`position_waiting`] gives it its real one as its transaction's last step (the audit
/// append, just before the commit). Taking positions locks the audit head row until the commit,
/// so positions are handed out in commit order; taking them last keeps that lock for a few
/// statements instead of the whole transaction. Readers ask for positions above a
/// non-negative one, so a placeholder is never read as a position.
pub(crate) fn placeholder() -> i64 {
    let (random, _) = uuid::Uuid::new_v4().as_u64_pair();
    -((random >> 2) as i64) - 1
}

/// The placeholders this transaction has written, in the order of their events: read from the
/// partial index that holds only waiting events (`ix_case_events_waiting`), and put in
/// order here rather than by `ORDER BY`, so no planner is tempted by a scan in id order.
pub(crate) async fn waiting<C: ConnectionTrait>(conn: &C) -> Result<Vec<i64>, DbErr> {
    let backend = conn.get_database_backend();
    let rows = conn
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT id, feed_seq FROM case_events WHERE feed_seq < 0",
        ))
        .await?;
    let mut found = rows
        .iter()
        .map(|r| {
            Ok((
                r.try_get::<i64>("", "id")?,
                r.try_get::<i64>("", "feed_seq")?,
            ))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    found.sort_unstable();
    Ok(found.into_iter().map(|(_, seq)| seq).collect())
}

/// The statements that replace the `waiting` placeholders (in events, and in the shares that
/// point at them) with the positions that end at `last`, which the caller took on the locked
/// audit head. Values are bound, numbered from `first_param`, so the text depends only on how
/// many events wait and stays in the prepared-statement cache. Empty when nothing waits.
pub(crate) fn position_statements(
    backend: DbBackend,
    waiting: &[i64],
    last: i64,
    first_param: usize,
) -> Vec<(String, Vec<sea_orm::Value>)> {
    if waiting.is_empty() {
        return Vec::new();
    }
    let first = last - waiting.len() as i64 + 1;
    let mut n = first_param;
    let mut next = || {
        let p = crate::db::placeholder(backend, n);
        n += 1;
        p
    };
    ["case_events", "case_shares"]
        .iter()
        .map(|table| {
            let mut values = Vec::new();
            let mut cases = String::new();
            for (i, p) in waiting.iter().enumerate() {
                cases.push_str(&format!(" WHEN {} THEN {}", next(), next()));
                values.push((*p).into());
                values.push((first + i as i64).into());
            }
            let list: Vec<String> = waiting
                .iter()
                .map(|p| {
                    values.push((*p).into());
                    next()
                })
                .collect();
            let sql = format!(
                "UPDATE {table} SET feed_seq = CASE feed_seq{cases} END WHERE feed_seq IN ({})",
                list.join(", ")
            );
            (sql, values)
        })
        .collect()
}

/// The statement that tells every process's listener, once the transaction commits, that the
/// feed now ends at `last` (PostgreSQL).
/// The position travels as bound parameter number `param`.
pub(crate) fn notify_statement(last: i64, param: usize) -> (String, sea_orm::Value) {
    (
        format!("SELECT pg_notify('{FEED_CHANNEL}', ${param})"),
        last.to_string().into(),
    )
}

/// The PostgreSQL channel that announces new feed positions.
pub const FEED_CHANNEL: &str = "junction_feed";

/// Waits for new feed events. On PostgreSQL: a `NOTIFY` from any Junction process. On SQLite:
/// while events keep coming, a read every 10 ms (`SQLITE_BUSY_POLL`); once a read finds
/// nothing, a commit by this process (every write transaction rings; the read that follows
/// filters out those that fed nothing), so an idle server reads nothing. Either way a slow
/// poll is the safety net, for a lost `LISTEN` connection or a write to the SQLite file from
/// outside this process.
pub struct FeedWaiter {
    pool: Option<sqlx::PgPool>,
    listener: Option<sqlx::postgres::PgListener>,
    commits: Option<tokio::sync::watch::Receiver<u64>>,
    safety_poll: std::time::Duration,
}

/// How often the feed is read when nothing has announced a change.
const SAFETY_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// On SQLite, the pause after a read that found events, and the least time from the start of
/// a wait to its end. Each read then collects what committed meanwhile, and each subscriber
/// handles several events per wake-up (one frame flush and one disclosure record) rather than
/// one. Measured with the subscriptions bench on one host (docs/BENCHMARKS.md): reading at
/// every commit, even no sooner than 10 ms after the wait began, cut its throughput from about
/// 135,000 to 80,000–100,000 events/s; polling while busy keeps it where polling alone had it.
const SQLITE_BUSY_POLL: std::time::Duration = std::time::Duration::from_millis(10);

impl FeedWaiter {
    /// A waiter that sees every commit from the moment it is made: make it before reading the
    /// feed's head, so nothing committed in between is missed.
    pub async fn new(store: &Store) -> FeedWaiter {
        FeedWaiter::with_safety_poll(store, SAFETY_POLL).await
    }

    /// The same, with another safety-net interval (tests use a long one to show the wake-ups
    /// alone suffice).
    pub async fn with_safety_poll(store: &Store, safety_poll: std::time::Duration) -> FeedWaiter {
        let pool = store.pg_pool();
        let listener = match &pool {
            Some(p) => listen(p).await,
            None => None,
        };
        FeedWaiter {
            pool,
            listener,
            commits: store.commit_watch(),
            safety_poll,
        }
    }

    /// Returns when there may be new events. `busy`: the last read found some (on SQLite the
    /// waiter then polls rather than waiting for a commit).
    pub async fn wait(&mut self, busy: bool) {
        let earliest = tokio::time::Instant::now() + SQLITE_BUSY_POLL;
        let safety = tokio::time::sleep(self.safety_poll);
        let Some(pool) = &self.pool else {
            match self.commits.as_mut() {
                Some(commits) if busy => {
                    tokio::time::sleep_until(earliest).await;
                    // The read that follows covers every commit rung so far.
                    commits.mark_unchanged();
                }
                Some(commits) => tokio::select! {
                    changed = commits.changed() => match changed {
                        Ok(()) => tokio::time::sleep_until(earliest).await,
                        // The store is gone: nothing will ring again.
                        Err(_) => self.commits = None,
                    },
                    _ = safety => {}
                },
                None if busy => tokio::time::sleep_until(earliest).await,
                None => safety.await,
            }
            return;
        };
        match self.listener.as_mut() {
            Some(l) => tokio::select! {
                n = l.recv() => if let Err(e) = n {
                    tracing::warn!(error = %e, "feed LISTEN connection lost; reconnecting");
                    self.listener = listen(pool).await;
                },
                _ = safety => {}
            },
            None => {
                safety.await;
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
