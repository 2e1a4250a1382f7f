//! Token revocations: tokens withdrawn before they expire, by id (`jti`) or every token of a
//! subject issued before a moment. Every process reloads the list and checks it on every
//! request and on open subscriptions.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::Actor;
use sea_orm::{ActiveValue::Set, EntityTrait, QueryOrder, QuerySelect};
use serde_json::{Value, json};

use crate::entity::token_revocation;
use crate::{Store, StoreError, audit};

/// What is withdrawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revoked {
    /// The one token with this `jti`.
    Token(String),
    /// Every token of this subject issued (its `iat`) before this moment.
    Subject {
        subject: String,
        issued_before: DateTime<Utc>,
    },
}

/// A stored revocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Revocation {
    pub id: i64,
    pub revoked: Revoked,
    pub reason: String,
    pub revoked_by: String,
    pub revoked_at: DateTime<Utc>,
}

/// Records a revocation, audited, and returns it.
pub async fn revoke(
    store: &Store,
    actor: &Actor,
    revoked: Revoked,
    reason: &str,
) -> Result<Revocation, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let (jti, subject, issued_before) = match &revoked {
        Revoked::Token(jti) => (Some(jti.clone()), None, None),
        Revoked::Subject {
            subject,
            issued_before,
        } => (None, Some(subject.clone()), Some(*issued_before)),
    };
    let txn = store.begin_write().await?;
    let id = token_revocation::Entity::insert(token_revocation::ActiveModel {
        jti: Set(jti.clone()),
        subject: Set(subject.clone()),
        issued_before: Set(issued_before),
        reason: Set(reason.to_string()),
        revoked_by: Set(actor.subject.clone()),
        revoked_at: Set(now),
        ..Default::default()
    })
    .exec(&*txn)
    .await?
    .last_insert_id;
    audit::append(
        &*txn,
        &[actor.change(
            "token",
            jti.as_deref().or(subject.as_deref()).unwrap_or(""),
            "revoke",
            Value::Null,
            json!({"jti": jti, "subject": subject, "issued_before": issued_before, "reason": reason}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(Revocation {
        id,
        revoked,
        reason: reason.to_string(),
        revoked_by: actor.subject.clone(),
        revoked_at: now,
    })
}

/// Every revocation, oldest first.
pub async fn all(store: &Store) -> Result<Vec<Revocation>, StoreError> {
    let rows = token_revocation::Entity::find()
        .order_by_asc(token_revocation::Column::Id)
        .all(store.conn())
        .await?;
    Ok(rows.into_iter().filter_map(from_row).collect())
}

/// The newest revocation's id (0 when there is none): a cheap test of whether to reload.
pub async fn latest(store: &Store) -> Result<i64, StoreError> {
    let row = token_revocation::Entity::find()
        .select_only()
        .column(token_revocation::Column::Id)
        .order_by_desc(token_revocation::Column::Id)
        .limit(1)
        .into_tuple::<i64>()
        .one(store.conn())
        .await?;
    Ok(row.unwrap_or(0))
}

fn from_row(r: token_revocation::Model) -> Option<Revocation> {
    let revoked = match (r.jti, r.subject, r.issued_before) {
        (Some(jti), _, _) => Revoked::Token(jti),
        (None, Some(subject), Some(issued_before)) => Revoked::Subject {
            subject,
            issued_before,
        },
        _ => return None,
    };
    Some(Revocation {
        id: r.id,
        revoked,
        reason: r.reason,
        revoked_by: r.revoked_by,
        revoked_at: r.revoked_at,
    })
}
