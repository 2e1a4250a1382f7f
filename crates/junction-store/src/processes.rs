//! Running processes and their heartbeats: a delivery claim names the process that holds it,
//! so when that process is gone (stopped, killed, or a machine that went away) its deliveries
//! are known to be orphaned at once, not when their leases lapse.
//!
//! A process is gone when it has not beaten for [`STALE_AFTER`], or at once when it ran on this
//! host and its pid no longer exists (a SIGKILL and a restart on the same machine).

use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use crate::entity::process;
use crate::{Store, StoreError};

/// How often a process beats.
pub const BEAT_EVERY: Duration = Duration::from_secs(2);

/// A process that has not beaten for this long is taken to be gone.
pub const STALE_AFTER: Duration = Duration::from_secs(10);

/// This machine's name, as processes record it.
pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// Records process `id` (this one) as running, beating now.
pub async fn register(store: &Store, id: &str) -> Result<(), StoreError> {
    record(store, id, &this_host(), std::process::id()).await
}

/// Records process `id`, running as `pid` on `host`, as beating now.
pub async fn record(store: &Store, id: &str, host: &str, pid: u32) -> Result<(), StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    process::Entity::delete_by_id(id.to_string())
        .exec(&*txn)
        .await?;
    process::Entity::insert(process::ActiveModel {
        id: Set(id.to_string()),
        host: Set(host.to_string()),
        pid: Set(i64::from(pid)),
        started_at: Set(now),
        heartbeat_at: Set(now),
    })
    .exec_without_returning(&*txn)
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Process `id` is still running.
pub async fn beat(store: &Store, id: &str) -> Result<(), StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let n = process::Entity::update_many()
        .col_expr(
            process::Column::HeartbeatAt,
            sea_orm::sea_query::Expr::value(now),
        )
        .filter(process::Column::Id.eq(id))
        .exec(&*txn)
        .await?
        .rows_affected;
    txn.commit().await?;
    if n == 0 {
        // Another process took this one for gone and removed it: come back.
        register(store, id).await?;
    }
    Ok(())
}

/// Process `id` stops: whatever it still holds is orphaned from now.
pub async fn forget(store: &Store, id: &str) -> Result<(), StoreError> {
    let txn = store.begin_write().await?;
    process::Entity::delete_by_id(id.to_string())
        .exec(&*txn)
        .await?;
    txn.commit().await?;
    Ok(())
}

/// The processes that are running at `now`: beaten within [`STALE_AFTER`], and, for those on
/// this host, with their pid still alive. Removes the rows of those that are gone.
pub async fn live(store: &Store, now: DateTime<Utc>) -> Result<Vec<String>, StoreError> {
    let rows = process::Entity::find().all(store.conn()).await?;
    let stale_before = now - chrono::Duration::from_std(STALE_AFTER).unwrap_or_default();
    let host = this_host();
    let (live, gone): (Vec<_>, Vec<_>) = rows
        .into_iter()
        .partition(|p| p.heartbeat_at >= stale_before && (p.host != host || pid_alive(p.pid)));
    if !gone.is_empty() {
        let txn = store.begin_write().await?;
        process::Entity::delete_many()
            .filter(process::Column::Id.is_in(gone.iter().map(|p| p.id.clone())))
            .exec(&*txn)
            .await?;
        txn.commit().await?;
        for p in &gone {
            tracing::warn!(
                process = p.id,
                host = p.host,
                pid = p.pid,
                "a Junction process is gone; what it held is orphaned"
            );
        }
    }
    Ok(live.into_iter().map(|p| p.id).collect())
}

/// Whether a process with this pid exists on this machine.
fn pid_alive(pid: i64) -> bool {
    if pid == i64::from(std::process::id()) {
        return true;
    }
    let proc_root = std::path::Path::new("/proc");
    if !proc_root.join("self").exists() {
        // No procfs: the heartbeat alone decides.
        return true;
    }
    // A process that was killed but not yet reaped by its parent is a zombie: gone too.
    match std::fs::read_to_string(proc_root.join(pid.to_string()).join("stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_none_or(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}
