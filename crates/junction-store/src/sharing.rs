//! Sharing: data sharing agreements, shares of cases with partners, the partner feed and the
//! disclosure log.
//!
//! Every change here writes a case event (for shares) and an audit entry in the same
//! transaction. Fed case events take their feed position from a counter on the audit head row,
//! under that row's lock, so the feed is in commit order: a reader that has seen position N has
//! seen every position below it.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, SubsecRound, Utc};
use junction_domain::sharing::ShareRule;
use junction_domain::{
    Actor, Agreement, AgreementStatus, AuditDisclosure, Case, CaseEvent, CaseEventKind,
    Classification, CoreClassification, DeliveryKind, DeliveryState, Share, ValidationErrors,
};
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement,
};
use serde_json::{Value, json};

use crate::cases::{from_row as case_from_row, insert_event, load_for_update};
use crate::catalogue::load_case_type;
use crate::entity::{
    agency, agreement, audit_head, audit_log, case, case_event, case_share, delivery,
};
use crate::{Store, StoreError, audit};

/// Where an agreement came from.
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

fn agreement_from(m: agreement::Model) -> Result<StoredAgreement, StoreError> {
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

/// One share of a case, live or withdrawn.
#[derive(Debug, Clone, PartialEq)]
pub struct ShareRecord {
    pub id: i64,
    pub case_id: String,
    pub agency_id: String,
    pub agreement_id: String,
    pub rule: Option<String>,
    pub reason: String,
    pub shared_by: String,
    pub shared_at: DateTime<Utc>,
    pub unshared_at: Option<DateTime<Utc>>,
    pub unshared_by: Option<String>,
    pub unshare_reason: Option<String>,
    /// The feed position of the share's `shared` event.
    pub feed_seq: i64,
}

impl ShareRecord {
    pub fn share(&self) -> Share {
        Share {
            case_id: self.case_id.clone(),
            agency_id: self.agency_id.clone(),
            agreement_id: self.agreement_id.clone(),
            since: self.feed_seq,
        }
    }
}

fn share_from(m: case_share::Model) -> ShareRecord {
    ShareRecord {
        id: m.id,
        case_id: m.case_id,
        agency_id: m.agency_id,
        agreement_id: m.agreement_id,
        rule: m.rule,
        reason: m.reason,
        shared_by: m.shared_by,
        shared_at: m.shared_at,
        unshared_at: m.unshared_at,
        unshared_by: m.unshared_by,
        unshare_reason: m.unshare_reason,
        feed_seq: m.feed_seq.unwrap_or(0),
    }
}

/// A case's shares, live and withdrawn, oldest first.
pub async fn shares_of_case(store: &Store, case_id: &str) -> Result<Vec<ShareRecord>, StoreError> {
    Ok(case_share::Entity::find()
        .filter(case_share::Column::CaseId.eq(case_id))
        .order_by_asc(case_share::Column::Id)
        .all(store.conn())
        .await?
        .into_iter()
        .map(share_from)
        .collect())
}

/// The live shares of each of `case_ids` (for visibility checks on a page of cases).
pub async fn live_shares(
    store: &Store,
    case_ids: &[String],
) -> Result<BTreeMap<String, Vec<Share>>, StoreError> {
    let mut out: BTreeMap<String, Vec<Share>> = BTreeMap::new();
    if case_ids.is_empty() {
        return Ok(out);
    }
    for m in case_share::Entity::find()
        .filter(case_share::Column::CaseId.is_in(case_ids.to_vec()))
        .filter(case_share::Column::UnsharedAt.is_null())
        .all(store.conn())
        .await?
    {
        let s = share_from(m);
        out.entry(s.case_id.clone()).or_default().push(s.share());
    }
    Ok(out)
}

/// Why a case is being shared.
#[derive(Debug, Clone)]
pub struct ShareRequest<'a> {
    pub agency_id: &'a str,
    /// The agreement to share under; when absent, the one active agreement with the agency that
    /// covers the case type.
    pub agreement_id: Option<&'a str>,
    pub reason: &'a str,
    pub rule: Option<&'a str>,
    /// Tell the partner by email through this (email) connector, showing only what the
    /// agreement allows.
    pub notify_via: Option<&'a str>,
}

/// Shares a case with a partner agency, with a `shared` event and an audit entry.
pub async fn share(
    store: &Store,
    actor: &Actor,
    case_ref: &str,
    request: ShareRequest<'_>,
) -> Result<ShareRecord, StoreError> {
    let txn = store.begin_write().await?;
    let case = load_for_update(&*txn, case_ref).await?;
    let now = Utc::now().trunc_subsecs(6);
    let record = share_in_txn(&*txn, actor, &case, &request, now).await?;
    txn.commit().await?;
    Ok(record)
}

/// Shares `case` inside the caller's transaction (case creation applies sharing rules this way).
pub(crate) async fn share_in_txn<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    case: &Case,
    request: &ShareRequest<'_>,
    now: DateTime<Utc>,
) -> Result<ShareRecord, StoreError> {
    let mut errors = ValidationErrors::default();
    if request.reason.trim().is_empty() {
        errors.push("reason", "is required: say why the case is shared");
    } else if request.reason.chars().count() > 2_000 {
        errors.push("reason", "is longer than 2000 characters");
    }
    errors.into_result()?;
    let candidates: Vec<Agreement> = agreement::Entity::find()
        .filter(agreement::Column::PartnerAgencyId.eq(request.agency_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| agreement_from(m).map(|s| s.agreement))
        .collect::<Result<_, _>>()?;
    let usable: Vec<&Agreement> = candidates
        .iter()
        .filter(|a| a.covers(&case.case_type_code) && a.is_active(now))
        .filter(|a| request.agreement_id.is_none_or(|id| a.id == id))
        .collect();
    let chosen = match (usable.as_slice(), request.agreement_id) {
        ([one], _) => *one,
        ([], Some(id)) => {
            let mut e = ValidationErrors::default();
            e.push(
                "agreement",
                format!(
                    "`{id}` is not an active agreement with `{}` covering case type `{}`",
                    request.agency_id, case.case_type_code
                ),
            );
            return Err(e.into());
        }
        ([], None) => {
            let mut e = ValidationErrors::default();
            e.push(
                "agency",
                format!(
                    "no active agreement with `{}` covers case type `{}`",
                    request.agency_id, case.case_type_code
                ),
            );
            return Err(e.into());
        }
        (_, _) => {
            let mut e = ValidationErrors::default();
            e.push(
                "agreement",
                "more than one active agreement covers this case: name the one to share under",
            );
            return Err(e.into());
        }
    };
    let live = case_share::Entity::find()
        .filter(case_share::Column::CaseId.eq(case.id.as_str()))
        .filter(case_share::Column::AgencyId.eq(request.agency_id))
        .filter(case_share::Column::UnsharedAt.is_null())
        .one(conn)
        .await?;
    if live.is_some() {
        return Err(StoreError::Conflict(format!(
            "case {} is already shared with `{}`",
            case.reference, request.agency_id
        )));
    }
    let row = case_share::ActiveModel {
        case_id: Set(case.id.clone()),
        agency_id: Set(request.agency_id.to_string()),
        agreement_id: Set(chosen.id.clone()),
        rule: Set(request.rule.map(String::from)),
        reason: Set(request.reason.trim().to_string()),
        shared_by: Set(actor.subject.clone()),
        shared_at: Set(now),
        ..Default::default()
    };
    let id = case_share::Entity::insert(row)
        .exec(conn)
        .await?
        .last_insert_id;
    let mut data = json!({
        "agency": request.agency_id,
        "agreement": chosen.id,
        "reason": request.reason.trim(),
        "rule": request.rule,
    });
    if let Some(connector) = request.notify_via {
        let notice = insert_notice(
            conn,
            case,
            request.agency_id,
            &chosen.id,
            id,
            connector,
            now,
        )
        .await?;
        data["notice"] = Value::from(notice);
    }
    let event = insert_event(
        conn,
        &case.id,
        CaseEventKind::Shared,
        actor,
        now,
        data.clone(),
    )
    .await?;
    let feed_seq = case_event::Entity::find_by_id(event.id)
        .one(conn)
        .await?
        .and_then(|e| e.feed_seq)
        .unwrap_or(0);
    case_share::Entity::update_many()
        .col_expr(case_share::Column::FeedSeq, Expr::value(feed_seq))
        .filter(case_share::Column::Id.eq(id))
        .exec(conn)
        .await?;
    audit::append(
        conn,
        &[actor.change("case", &case.id, "share", Value::Null, data)],
    )
    .await?;
    Ok(ShareRecord {
        id,
        case_id: case.id.clone(),
        agency_id: request.agency_id.to_string(),
        agreement_id: chosen.id.clone(),
        rule: request.rule.map(String::from),
        reason: request.reason.trim().to_string(),
        shared_by: actor.subject.clone(),
        shared_at: now,
        unshared_at: None,
        unshared_by: None,
        unshare_reason: None,
        feed_seq,
    })
}

/// Queues the email telling a partner about a share; returns the delivery's id. An agency
/// with no email address gets a dead delivery saying so, so the gap shows.
async fn insert_notice<C: ConnectionTrait>(
    conn: &C,
    case: &Case,
    agency_id: &str,
    agreement_id: &str,
    share_id: i64,
    connector: &str,
    now: DateTime<Utc>,
) -> Result<i64, StoreError> {
    let email = agency::Entity::find_by_id(agency_id.to_string())
        .one(conn)
        .await?
        .and_then(|a| a.email);
    let mut row = crate::deliveries::new_row(
        case,
        connector,
        DeliveryKind::PartnerNotice,
        json!({"to": email.iter().collect::<Vec<_>>(), "agency": agency_id, "agreement": agreement_id, "share": share_id}),
        now,
    );
    row.agency_id = Set(agency_id.to_string());
    row.idempotency_key = Set(format!("{}:{connector}:partner_notice:{share_id}", case.id));
    if email.is_none() {
        row.state = Set(DeliveryState::Dead.as_str().to_string());
        row.last_error = Set(Some(format!(
            "partner `{agency_id}` has no email address for share notices"
        )));
    }
    Ok(delivery::Entity::insert(row)
        .exec(conn)
        .await?
        .last_insert_id)
}

/// Applies sharing rules to a new case inside its creating transaction. A rule whose agreement
/// is not active, or does not cover the case type, shares nothing.
pub(crate) async fn apply_rules<C: ConnectionTrait>(
    conn: &C,
    actor: &Actor,
    case: &Case,
    rules: &[ShareRule],
    email_connector: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<ShareRecord>, StoreError> {
    let mut made = Vec::new();
    for rule in rules {
        let Some(m) = agreement::Entity::find_by_id(rule.agreement.clone())
            .one(conn)
            .await?
        else {
            continue;
        };
        let a = agreement_from(m)?.agreement;
        if !rule.applies(case, &a, now)
            || made
                .iter()
                .any(|s: &ShareRecord| s.agency_id == rule.agency)
        {
            continue;
        }
        let request = ShareRequest {
            agency_id: &rule.agency,
            agreement_id: Some(&rule.agreement),
            reason: &format!("sharing rule `{}`", rule.name),
            rule: Some(&rule.name),
            notify_via: email_connector.filter(|_| rule.notify),
        };
        made.push(share_in_txn(conn, actor, case, &request, now).await?);
    }
    Ok(made)
}

/// Withdraws a case's live share with a partner, with an `unshared` event and an audit entry.
pub async fn unshare(
    store: &Store,
    actor: &Actor,
    case_ref: &str,
    agency_id: &str,
    reason: &str,
) -> Result<ShareRecord, StoreError> {
    let mut errors = ValidationErrors::default();
    if reason.trim().is_empty() {
        errors.push("reason", "is required: say why the share is withdrawn");
    }
    errors.into_result()?;
    let txn = store.begin_write().await?;
    let case = load_for_update(&*txn, case_ref).await?;
    let live = case_share::Entity::find()
        .filter(case_share::Column::CaseId.eq(case.id.as_str()))
        .filter(case_share::Column::AgencyId.eq(agency_id))
        .filter(case_share::Column::UnsharedAt.is_null())
        .one(&*txn)
        .await?
        .ok_or_else(|| {
            StoreError::Conflict(format!(
                "case {} is not shared with `{agency_id}`",
                case.reference
            ))
        })?;
    let now = Utc::now().trunc_subsecs(6);
    case_share::Entity::update_many()
        .col_expr(case_share::Column::UnsharedAt, Expr::value(now))
        .col_expr(
            case_share::Column::UnsharedBy,
            Expr::value(actor.subject.clone()),
        )
        .col_expr(
            case_share::Column::UnshareReason,
            Expr::value(reason.trim().to_string()),
        )
        .filter(case_share::Column::Id.eq(live.id))
        .exec(&*txn)
        .await?;
    let data =
        json!({"agency": agency_id, "agreement": live.agreement_id, "reason": reason.trim()});
    insert_event(
        &*txn,
        &case.id,
        CaseEventKind::Unshared,
        actor,
        now,
        data.clone(),
    )
    .await?;
    audit::append(
        &*txn,
        &[actor.change("case", &case.id, "unshare", Value::Null, data)],
    )
    .await?;
    txn.commit().await?;
    let mut record = share_from(live);
    record.unshared_at = Some(now);
    record.unshared_by = Some(actor.subject.clone());
    record.unshare_reason = Some(reason.trim().to_string());
    Ok(record)
}

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

/// One disclosure, as the audit log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DisclosureRecord {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub request_id: Option<String>,
    pub disclosure: AuditDisclosure,
}

/// Every disclosure of a case's personal or sensitive values to a partner, oldest first.
pub async fn disclosures(
    store: &Store,
    case_id: &str,
) -> Result<Vec<DisclosureRecord>, StoreError> {
    audit_log::Entity::find()
        .filter(audit_log::Column::Kind.eq("disclosure"))
        .filter(audit_log::Column::ObjectType.eq("case"))
        .filter(audit_log::Column::ObjectId.eq(case_id))
        .order_by_asc(audit_log::Column::Seq)
        .all(store.conn())
        .await?
        .into_iter()
        .map(|m| {
            let disclosure = serde_json::from_str(m.disclosure.as_deref().unwrap_or("null"))
                .map_err(|e| StoreError::corrupt("audit disclosure", e))?;
            Ok(DisclosureRecord {
                seq: m.seq,
                at: m.at,
                actor: m.actor,
                request_id: m.request_id,
                disclosure,
            })
        })
        .collect()
}
