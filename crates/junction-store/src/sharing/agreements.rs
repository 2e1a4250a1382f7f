//! Data sharing agreements: from the configuration and from the API, every change audited.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use junction_domain::{
    Actor, Agreement, AgreementStatus, Classification, CoreClassification, ValidationErrors,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde_json::{Value, json};

use crate::catalogue::load_case_type;
use crate::entity::{agency, agreement, case_share};
use crate::{Store, StoreError, audit};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgreementSource {
    Config,
    Api,
}

impl AgreementSource {
    fn as_str(self) -> &'static str {
        match self {
            AgreementSource::Config => "config",
            AgreementSource::Api => "api",
        }
    }
}

/// An agreement as stored, with where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAgreement {
    pub agreement: Agreement,
    pub source: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn agreement_row(
    a: &Agreement,
    source: AgreementSource,
    config_hash: Option<String>,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> agreement::ActiveModel {
    agreement::ActiveModel {
        id: Set(a.id.clone()),
        jurisdiction_id: Set(a.jurisdiction_id.clone()),
        title: Set(a.title.clone()),
        partner_agency_id: Set(a.partner_agency_id.clone()),
        case_types: Set(to_json(&a.case_types)),
        purposes: Set(to_json(&a.purposes)),
        lawful_basis: Set(a.lawful_basis.clone()),
        ceiling: Set(a.ceiling.as_str().to_string()),
        fields: Set(a.fields.as_ref().map(to_json)),
        valid_from: Set(a.valid_from),
        valid_to: Set(a.valid_to),
        review_date: Set(a.review_date.map(|d| d.format("%Y-%m-%d").to_string())),
        status: Set(a.status.as_str().to_string()),
        source: Set(source.as_str().to_string()),
        config_hash: Set(config_hash),
        created_at: Set(created_at),
        updated_at: Set(now),
    }
}

pub(super) fn agreement_from(m: agreement::Model) -> Result<StoredAgreement, StoreError> {
    let list = |what: &str, s: &str| -> Result<Vec<String>, StoreError> {
        serde_json::from_str(s).map_err(|e| StoreError::corrupt(what, e))
    };
    Ok(StoredAgreement {
        agreement: Agreement {
            case_types: list("agreement case types", &m.case_types)?,
            purposes: list("agreement purposes", &m.purposes)?,
            fields: m
                .fields
                .as_deref()
                .map(|f| list("agreement fields", f))
                .transpose()?,
            ceiling: Classification::ALL
                .into_iter()
                .find(|c| c.as_str() == m.ceiling)
                .ok_or_else(|| StoreError::corrupt("agreement ceiling", &m.ceiling))?,
            status: AgreementStatus::parse(&m.status)
                .ok_or_else(|| StoreError::corrupt("agreement status", &m.status))?,
            review_date: m
                .review_date
                .as_deref()
                .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
                .transpose()
                .map_err(|e| StoreError::corrupt("agreement review date", e))?,
            id: m.id,
            jurisdiction_id: m.jurisdiction_id,
            title: m.title,
            partner_agency_id: m.partner_agency_id,
            lawful_basis: m.lawful_basis,
            valid_from: m.valid_from,
            valid_to: m.valid_to,
        },
        source: m.source,
        created_at: m.created_at,
        updated_at: m.updated_at,
    })
}

/// Every agreement, by id.
pub async fn agreements(store: &Store) -> Result<Vec<StoredAgreement>, StoreError> {
    agreement::Entity::find()
        .order_by_asc(agreement::Column::Id)
        .all(store.conn())
        .await?
        .into_iter()
        .map(agreement_from)
        .collect()
}

/// The agreements with one partner agency, whatever their state.
pub async fn agreements_for_agency(
    store: &Store,
    agency_id: &str,
) -> Result<Vec<Agreement>, StoreError> {
    Ok(agreement::Entity::find()
        .filter(agreement::Column::PartnerAgencyId.eq(agency_id))
        .all(store.conn())
        .await?
        .into_iter()
        .map(agreement_from)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|s| s.agreement)
        .collect())
}

pub async fn agreement(store: &Store, id: &str) -> Result<Option<StoredAgreement>, StoreError> {
    agreement::Entity::find_by_id(id.to_string())
        .one(store.conn())
        .await?
        .map(agreement_from)
        .transpose()
}

/// Checks an agreement against the stored catalogue and the other agreements.
async fn check_agreement<C: ConnectionTrait>(
    conn: &C,
    a: &Agreement,
    purposes: &[String],
    core: &CoreClassification,
) -> Result<(), StoreError> {
    let partner = agency::Entity::find_by_id(a.partner_agency_id.clone())
        .one(conn)
        .await?;
    let mut types = BTreeMap::new();
    for code in &a.case_types {
        if let Some(t) = load_case_type(conn, &a.jurisdiction_id, code).await? {
            types.insert(code.clone(), t);
        }
    }
    a.validate(
        partner
            .as_ref()
            .is_some_and(|p| p.jurisdiction_id == a.jurisdiction_id),
        &|code| types.get(code).cloned(),
        purposes,
        core,
    )?;
    let mut errors = ValidationErrors::default();
    for other in agreement::Entity::find()
        .filter(agreement::Column::PartnerAgencyId.eq(a.partner_agency_id.as_str()))
        .filter(agreement::Column::Id.ne(a.id.as_str()))
        .all(conn)
        .await?
    {
        let other = agreement_from(other)?.agreement;
        if let Some(why) = a.disagrees_with(&other) {
            errors.push("validTo", why);
        }
    }
    errors.into_result().map_err(Into::into)
}

/// Makes the configuration's agreements the stored ones, in one transaction: new ones are
/// created, ones whose declaration changed are rewritten, ones no longer declared are removed
/// unless a share still refers to them. An agreement whose declaration did not change keeps
/// what was done to it at run time (a suspension, for instance).
pub async fn apply_config(
    store: &Store,
    actor: &Actor,
    declared: &[Agreement],
) -> Result<Vec<String>, StoreError> {
    let txn = store.begin_write().await?;
    let now = Utc::now().trunc_subsecs(6);
    let existing: BTreeMap<String, agreement::Model> = agreement::Entity::find()
        .all(&*txn)
        .await?
        .into_iter()
        .map(|m| (m.id.clone(), m))
        .collect();
    let mut report = Vec::new();
    let mut entries = Vec::new();
    for a in declared {
        let hash = junction_domain::audit::sha256_hex(to_json(a).as_bytes());
        let old = existing.get(&a.id);
        if old.is_some_and(|m| m.config_hash.as_deref() == Some(hash.as_str())) {
            continue;
        }
        if old.is_some_and(|m| m.source != AgreementSource::Config.as_str()) {
            return Err(StoreError::Conflict(format!(
                "agreement `{}` was created over the API; give the configured one another id",
                a.id
            )));
        }
        let row = agreement_row(
            a,
            AgreementSource::Config,
            Some(hash),
            old.map_or(now, |m| m.created_at),
            now,
        );
        let before = match old {
            Some(m) => {
                serde_json::to_value(&agreement_from(m.clone())?.agreement).unwrap_or(Value::Null)
            }
            None => Value::Null,
        };
        if old.is_some() {
            agreement::Entity::update(row).exec(&*txn).await?;
            report.push(format!("agreement:{} updated", a.id));
        } else {
            agreement::Entity::insert(row)
                .exec_without_returning(&*txn)
                .await?;
            report.push(format!("agreement:{} created", a.id));
        }
        let action = if old.is_some() { "update" } else { "create" };
        let after = serde_json::to_value(a).unwrap_or(Value::Null);
        entries.push(actor.change("agreement", &a.id, action, before, after));
    }
    for (id, m) in &existing {
        if m.source != AgreementSource::Config.as_str() || declared.iter().any(|a| &a.id == id) {
            continue;
        }
        let shares = case_share::Entity::find()
            .filter(case_share::Column::AgreementId.eq(id.as_str()))
            .count(&*txn)
            .await?;
        if shares > 0 {
            return Err(StoreError::InUse(format!(
                "agreement `{id}` has {shares} share(s) and cannot be removed; keep it with `status = \"suspended\"` or a `valid_to` date"
            )));
        }
        agreement::Entity::delete_by_id(id.clone())
            .exec(&*txn)
            .await?;
        entries.push(actor.change("agreement", id, "remove", Value::Bool(true), Value::Null));
        report.push(format!("agreement:{id} removed"));
    }
    audit::append(&*txn, &entries).await?;
    txn.commit().await?;
    Ok(report)
}

/// Creates or replaces an agreement made over the API, checked against the catalogue and the
/// other agreements of its partner.
pub async fn save_agreement(
    store: &Store,
    actor: &Actor,
    a: &Agreement,
    purposes: &[String],
    core: &CoreClassification,
) -> Result<StoredAgreement, StoreError> {
    let txn = store.begin_write().await?;
    check_agreement(&*txn, a, purposes, core).await?;
    let now = Utc::now().trunc_subsecs(6);
    let old = agreement::Entity::find_by_id(a.id.clone())
        .one(&*txn)
        .await?;
    let before = match &old {
        Some(m) => serde_json::to_value(&agreement_from(m.clone())?.agreement).unwrap_or_default(),
        None => Value::Null,
    };
    let source = match old.as_ref().map(|m| m.source.as_str()) {
        Some("config") => AgreementSource::Config,
        _ => AgreementSource::Api,
    };
    let hash = old.as_ref().and_then(|m| m.config_hash.clone());
    let row = agreement_row(
        a,
        source,
        hash,
        old.as_ref().map_or(now, |m| m.created_at),
        now,
    );
    if old.is_some() {
        agreement::Entity::update(row).exec(&*txn).await?;
    } else {
        agreement::Entity::insert(row)
            .exec_without_returning(&*txn)
            .await?;
    }
    let action = if old.is_some() { "update" } else { "create" };
    let after = serde_json::to_value(a).unwrap_or_default();
    audit::append(
        &*txn,
        &[actor.change("agreement", &a.id, action, before, after)],
    )
    .await?;
    txn.commit().await?;
    Ok(StoredAgreement {
        agreement: a.clone(),
        source: source.as_str().into(),
        created_at: old.map_or(now, |m| m.created_at),
        updated_at: now,
    })
}

/// Suspends or resumes an agreement.
pub async fn set_agreement_status(
    store: &Store,
    actor: &Actor,
    id: &str,
    status: AgreementStatus,
    reason: &str,
) -> Result<StoredAgreement, StoreError> {
    let txn = store.begin_write().await?;
    let old = agreement::Entity::find_by_id(id.to_string())
        .one(&*txn)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "agreement",
            id: id.to_string(),
        })?;
    let mut stored = agreement_from(old.clone())?;
    if stored.agreement.status == status {
        return Err(StoreError::Conflict(format!(
            "agreement `{id}` is already {}",
            status.as_str()
        )));
    }
    let now = Utc::now().trunc_subsecs(6);
    agreement::Entity::update_many()
        .col_expr(agreement::Column::Status, Expr::value(status.as_str()))
        .col_expr(agreement::Column::UpdatedAt, Expr::value(now))
        .filter(agreement::Column::Id.eq(id))
        .exec(&*txn)
        .await?;
    audit::append(
        &*txn,
        &[actor.change(
            "agreement",
            id,
            "set_status",
            json!({"status": stored.agreement.status.as_str()}),
            json!({"status": status.as_str(), "reason": reason}),
        )],
    )
    .await?;
    txn.commit().await?;
    stored.agreement.status = status;
    stored.updated_at = now;
    Ok(stored)
}
