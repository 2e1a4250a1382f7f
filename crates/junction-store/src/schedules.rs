//! Schedules: recurring work (update polls, feeds, imports, category syncs) declared in the
//! configuration, whose state lives here so that a due run happens once across every process
//! on the database and a restart neither skips nor repeats one.
//!
//! A process claims a due run with one guarded update (the run is due and nobody holds an
//! unexpired lease on it); only the process whose update changed the row runs it. Finishing
//! records the outcome and sets the next due time; a process that dies mid-run leaves a lease
//! that expires, and the run is taken again.

use chrono::{DateTime, Duration, SubsecRound, Utc};
use junction_domain::Actor;
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde::Serialize;
use serde_json::json;

use crate::entity::schedule;
use crate::{Store, StoreError, audit};

/// A schedule as the configuration declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// Unique: `<kind>:<connector>` (e.g. `poll_updates:highways`).
    pub name: String,
    pub kind: String,
    pub connector_id: Option<String>,
    pub every: Duration,
}

/// A schedule's state, for managers and for the runner.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Schedule {
    pub name: String,
    pub kind: String,
    pub connector_id: Option<String>,
    pub every_secs: i64,
    pub next_run_at: DateTime<Utc>,
    pub running_since: Option<DateTime<Utc>>,
    pub last_started_at: Option<DateTime<Utc>>,
    pub last_finished_at: Option<DateTime<Utc>>,
    pub last_outcome: Option<String>,
    pub last_counts: Option<serde_json::Value>,
    pub last_error: Option<String>,
    /// Where the schedule's work reached, as the kind of work keeps it.
    pub cursor: Option<serde_json::Value>,
}

fn from_row(row: schedule::Model, now: DateTime<Utc>) -> Schedule {
    let running = row.lease_until.is_some_and(|u| u > now);
    Schedule {
        name: row.name,
        kind: row.kind,
        connector_id: row.connector_id,
        every_secs: row.every_secs,
        next_run_at: row.next_run_at,
        running_since: if running { row.last_started_at } else { None },
        last_started_at: row.last_started_at,
        last_finished_at: row.last_finished_at,
        last_outcome: row.last_outcome,
        last_counts: row.last_counts.and_then(|c| serde_json::from_str(&c).ok()),
        last_error: row.last_error,
        cursor: row.cursor.and_then(|c| serde_json::from_str(&c).ok()),
    }
}

/// Makes the stored schedules match the declared ones: a new one is due now; an existing one
/// keeps its state (a changed interval applies from its next run). Schedules no longer
/// declared are left alone, so their history stays readable.
pub async fn declare(store: &Store, declared: &[Declared]) -> Result<(), StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    for d in declared {
        let row = schedule::ActiveModel {
            name: Set(d.name.clone()),
            kind: Set(d.kind.clone()),
            connector_id: Set(d.connector_id.clone()),
            every_secs: Set(std::cmp::max(d.every.num_seconds(), 1)),
            next_run_at: Set(now),
            ..Default::default()
        };
        schedule::Entity::insert(row)
            .on_conflict(
                OnConflict::column(schedule::Column::Name)
                    .update_column(schedule::Column::EverySecs)
                    .to_owned(),
            )
            .exec_without_returning(store.conn())
            .await?;
    }
    Ok(())
}

/// Every stored schedule, by name.
pub async fn list(store: &Store) -> Result<Vec<Schedule>, StoreError> {
    let now = Utc::now();
    Ok(schedule::Entity::find()
        .order_by_asc(schedule::Column::Name)
        .all(store.conn())
        .await?
        .into_iter()
        .map(|r| from_row(r, now))
        .collect())
}

/// Schedule `name`, if stored.
pub async fn get(store: &Store, name: &str) -> Result<Option<Schedule>, StoreError> {
    Ok(schedule::Entity::find_by_id(name.to_string())
        .one(store.conn())
        .await?
        .map(|r| from_row(r, Utc::now())))
}

/// Claims schedule `name`'s due run for `owner`, holding it for `lease`. Returns the schedule
/// when this process is to run it; `None` when it is not due or another process holds it.
pub async fn claim(
    store: &Store,
    name: &str,
    owner: &str,
    lease: Duration,
) -> Result<Option<Schedule>, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let claimed = schedule::Entity::update_many()
        .col_expr(schedule::Column::LeaseOwner, Expr::value(owner))
        .col_expr(schedule::Column::LeaseUntil, Expr::value(now + lease))
        .col_expr(schedule::Column::LastStartedAt, Expr::value(now))
        .filter(schedule::Column::Name.eq(name))
        .filter(schedule::Column::NextRunAt.lte(now))
        .filter(
            schedule::Column::LeaseUntil
                .is_null()
                .or(schedule::Column::LeaseUntil.lt(now)),
        )
        .exec(store.conn())
        .await?;
    if claimed.rows_affected != 1 {
        return Ok(None);
    }
    get(store, name).await
}

/// How a run ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub ok: bool,
    pub counts: serde_json::Value,
    pub error: Option<String>,
    /// The cursor to keep; `None` keeps the one stored.
    pub cursor: Option<serde_json::Value>,
}

/// Records the end of `owner`'s run of `name`, claimed when it was due at `due`, and makes
/// the next one due `every` after that (or now, if that has passed); a "run now" asked for
/// during the run stays due. A process whose lease was taken over records nothing (a
/// conflict).
pub async fn finish(
    store: &Store,
    name: &str,
    owner: &str,
    due: DateTime<Utc>,
    finished: &Finished,
) -> Result<(), StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let Some(current) = schedule::Entity::find_by_id(name.to_string())
        .one(store.conn())
        .await?
    else {
        return Err(StoreError::NotFound {
            kind: "schedule",
            id: name.to_string(),
        });
    };
    let next = if current.next_run_at > due {
        current.next_run_at
    } else {
        std::cmp::max(due + Duration::seconds(current.every_secs), now)
    };
    let mut update = schedule::Entity::update_many()
        .col_expr(
            schedule::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            schedule::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(schedule::Column::NextRunAt, Expr::value(next))
        .col_expr(schedule::Column::LastFinishedAt, Expr::value(now))
        .col_expr(
            schedule::Column::LastOutcome,
            Expr::value(if finished.ok { "ok" } else { "failed" }),
        )
        .col_expr(
            schedule::Column::LastCounts,
            Expr::value(finished.counts.to_string()),
        )
        .col_expr(
            schedule::Column::LastError,
            Expr::value(finished.error.clone()),
        );
    if let Some(cursor) = &finished.cursor {
        update = update.col_expr(schedule::Column::Cursor, Expr::value(cursor.to_string()));
    }
    let done = update
        .filter(schedule::Column::Name.eq(name))
        .filter(schedule::Column::LeaseOwner.eq(owner))
        .exec(store.conn())
        .await?;
    if done.rows_affected != 1 {
        return Err(StoreError::Conflict(format!(
            "schedule `{name}`'s run was taken over by another process"
        )));
    }
    Ok(())
}

/// Makes schedule `name` due now (a manager's "run now"), audited with who asked; the next
/// check of any process with workers runs it.
pub async fn run_now(store: &Store, actor: &Actor, name: &str) -> Result<Schedule, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let Some(before) = schedule::Entity::find_by_id(name.to_string())
        .one(&*txn)
        .await?
    else {
        return Err(StoreError::NotFound {
            kind: "schedule",
            id: name.to_string(),
        });
    };
    schedule::Entity::update_many()
        .col_expr(schedule::Column::NextRunAt, Expr::value(now))
        .filter(schedule::Column::Name.eq(name))
        .exec(&*txn)
        .await?;
    let entry = actor.change(
        "schedule",
        name,
        "run_now",
        json!({"next_run_at": before.next_run_at}),
        json!({"next_run_at": now}),
    );
    audit::append(&*txn, &[entry]).await?;
    txn.commit().await?;
    get(store, name).await?.ok_or_else(|| StoreError::NotFound {
        kind: "schedule",
        id: name.to_string(),
    })
}
