//! API keys for Open311 clients. Only a SHA-256 hash of each key is stored; the key itself is
//! shown once, when it is made. Keys are 256 random bits, so a plain hash is enough: there is
//! nothing to guess that a slow hash would protect.

use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::Actor;
use junction_domain::audit::sha256_hex;
use rand::RngCore;
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

use crate::entity::api_key;
use crate::{Store, StoreError, audit};

/// A stored key, without the key.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    /// The one jurisdiction the key is good for, or all when `None`.
    pub jurisdiction_id: Option<String>,
    /// The connector whose back-end this key speaks for (it may only push that back-end's
    /// updates); none for a front-end's key.
    pub connector_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

fn from_row(r: api_key::Model) -> ApiKey {
    ApiKey {
        id: r.id,
        name: r.name,
        jurisdiction_id: r.jurisdiction_id,
        connector_id: r.connector_id,
        created_at: r.created_at,
        revoked_at: r.revoked_at,
    }
}

/// Makes a key for client `name` and returns it with the only copy of the key itself.
pub async fn create(
    store: &Store,
    actor: &Actor,
    name: &str,
    jurisdiction_id: Option<&str>,
) -> Result<(ApiKey, String), StoreError> {
    make(store, actor, name, jurisdiction_id, None).await
}

/// Makes a key for the back-end of connector `connector_id`, named `name`: it may only push
/// that back-end's updates on the cases the connector holds.
pub async fn create_for_connector(
    store: &Store,
    actor: &Actor,
    name: &str,
    connector_id: &str,
) -> Result<(ApiKey, String), StoreError> {
    make(store, actor, name, None, Some(connector_id)).await
}

async fn make(
    store: &Store,
    actor: &Actor,
    name: &str,
    jurisdiction_id: Option<&str>,
    connector_id: Option<&str>,
) -> Result<(ApiKey, String), StoreError> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let key = format!(
        "jk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let now = Utc::now().trunc_subsecs(6);
    let record = ApiKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_string(),
        jurisdiction_id: jurisdiction_id.map(str::to_string),
        connector_id: connector_id.map(str::to_string),
        created_at: now,
        revoked_at: None,
    };
    let txn = store.begin_write().await?;
    api_key::Entity::insert(api_key::ActiveModel {
        id: Set(record.id.clone()),
        name: Set(record.name.clone()),
        jurisdiction_id: Set(record.jurisdiction_id.clone()),
        connector_id: Set(record.connector_id.clone()),
        key_hash: Set(sha256_hex(key.as_bytes())),
        created_at: Set(now),
        revoked_at: Set(None),
    })
    .exec_without_returning(&*txn)
    .await?;
    audit::append(
        &*txn,
        &[actor.change(
            "api_key",
            &record.id,
            "create",
            Value::Null,
            json!({"name": name, "jurisdiction": jurisdiction_id, "connector": connector_id}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok((record, key))
}

/// The live key matching `key` that is good for `jurisdiction_id`, if any.
pub async fn verify(
    store: &Store,
    key: &str,
    jurisdiction_id: &str,
) -> Result<Option<ApiKey>, StoreError> {
    if key.is_empty() || key.len() > 256 {
        return Ok(None);
    }
    let row = api_key::Entity::find()
        .filter(api_key::Column::KeyHash.eq(sha256_hex(key.as_bytes())))
        .filter(api_key::Column::RevokedAt.is_null())
        .one(store.conn())
        .await?;
    Ok(row.map(from_row).filter(|k| {
        k.jurisdiction_id
            .as_deref()
            .is_none_or(|j| j == jurisdiction_id)
    }))
}

/// Every key, newest first.
pub async fn list(store: &Store) -> Result<Vec<ApiKey>, StoreError> {
    Ok(api_key::Entity::find()
        .order_by_desc(api_key::Column::CreatedAt)
        .all(store.conn())
        .await?
        .into_iter()
        .map(from_row)
        .collect())
}

/// Revokes key `id` (by id or name); returns whether a live key was revoked.
pub async fn revoke(store: &Store, actor: &Actor, id_or_name: &str) -> Result<bool, StoreError> {
    let now = Utc::now().trunc_subsecs(6);
    let txn = store.begin_write().await?;
    let rows = api_key::Entity::find()
        .filter(api_key::Column::RevokedAt.is_null())
        .all(&*txn)
        .await?;
    let targets: Vec<_> = rows
        .into_iter()
        .filter(|r| r.id == id_or_name || r.name == id_or_name)
        .collect();
    for r in &targets {
        api_key::Entity::update(api_key::ActiveModel {
            id: Set(r.id.clone()),
            revoked_at: Set(Some(now)),
            ..Default::default()
        })
        .exec(&*txn)
        .await?;
        audit::append(
            &*txn,
            &[actor.change(
                "api_key",
                &r.id,
                "revoke",
                json!({"revoked": false}),
                json!({"revoked": true}),
            )],
        )
        .await?;
    }
    txn.commit().await?;
    Ok(!targets.is_empty())
}
