//! Shares of cases with partners, by hand and by rule, each one a case event.

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::sharing::{ShareRule, choose_agreement};
use junction_domain::{
    Actor, Agreement, Case, CaseEventKind, DeliveryKind, DeliveryState, Share, ValidationErrors,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::{Value, json};

use crate::cases::{insert_event, load_for_update};
use crate::entity::{agency, agreement, case_event, case_share, delivery};
use crate::{Store, StoreError, audit};

use super::agreements::agreement_from;

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
    let candidates: Vec<Agreement> = agreement::Entity::find()
        .filter(agreement::Column::PartnerAgencyId.eq(request.agency_id))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| agreement_from(m).map(|s| s.agreement))
        .collect::<Result<_, _>>()?;
    let chosen = choose_agreement(
        &candidates,
        request.agency_id,
        &case.case_type_code,
        request.agreement_id,
        request.reason,
        now,
    )?;
    refuse_if_shared(conn, case, request.agency_id).await?;
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
    // The share starts at its event's feed position: the placeholder now, which the audit
    // append below replaces with the position in both places.
    case_share::Entity::update_many()
        .col_expr(
            case_share::Column::FeedSeq,
            Expr::value(event_seq(conn, event.id).await?),
        )
        .filter(case_share::Column::Id.eq(id))
        .exec(conn)
        .await?;
    audit::append(
        conn,
        &[actor.change("case", &case.id, "share", Value::Null, data)],
    )
    .await?;
    let feed_seq = event_seq(conn, event.id).await?;
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

/// An event's feed position (or its placeholder, before the audit append sets it).
async fn event_seq<C: ConnectionTrait>(conn: &C, event_id: i64) -> Result<i64, StoreError> {
    Ok(case_event::Entity::find_by_id(event_id)
        .one(conn)
        .await?
        .and_then(|e| e.feed_seq)
        .unwrap_or(0))
}

/// A case is shared with an agency once at a time.
async fn refuse_if_shared<C: ConnectionTrait>(
    conn: &C,
    case: &Case,
    agency_id: &str,
) -> Result<(), StoreError> {
    let live = case_share::Entity::find()
        .filter(case_share::Column::CaseId.eq(case.id.as_str()))
        .filter(case_share::Column::AgencyId.eq(agency_id))
        .filter(case_share::Column::UnsharedAt.is_null())
        .one(conn)
        .await?;
    if live.is_some() {
        return Err(StoreError::Conflict(format!(
            "case {} is already shared with `{}`",
            case.reference, agency_id
        )));
    }
    Ok(())
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
        &junction_domain::DeliveryPayload {
            to: email.iter().cloned().collect(),
            agency: Some(agency_id.to_string()),
            agreement: Some(agreement_id.to_string()),
            share: Some(share_id),
            token: None,
        },
        now,
    );
    row.agency_id = Set(agency_id.to_string());
    row.idempotency_key = Set(junction_domain::delivery::idempotency_key(
        &case.id,
        connector,
        DeliveryKind::PartnerNotice,
        Some(&share_id.to_string()),
    ));
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
