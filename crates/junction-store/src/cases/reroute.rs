//! Rerouting a case: routed again (optionally under another case type), its unsent
//! deliveries cancelled and new ones made, in one transaction with the case locked.

use std::collections::BTreeMap;

use chrono::{SubsecRound, Utc};
use junction_domain::{Actor, Case, CaseEventKind, RoutingTable, ValidationErrors};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use super::{bump, insert_event, load_for_update};
use crate::catalogue::{case_type_id, load_case_type};
use crate::entity::case;
use crate::{Store, StoreError, audit, deliveries};

/// Routes a case again, optionally under another case type (a category change), and sends it
/// where the new route says. Deliveries not yet sent are cancelled; the references earlier
/// connectors gave the case are kept in its history and audit record, and cleared so the
/// new deliveries record their own.
pub async fn reroute(
    store: &Store,
    actor: &Actor,
    id: &str,
    new_case_type: Option<&str>,
    routing: &RoutingTable,
) -> Result<Case, StoreError> {
    let txn = store.begin_write().await?;
    let mut case = load_for_update(&*txn, id).await?;
    let from_type = case.case_type_code.clone();
    let code = new_case_type.unwrap_or(&from_type).to_string();
    let mut dropped_fields = BTreeMap::new();
    let Some(case_type) = load_case_type(&*txn, &case.jurisdiction_id, &code).await? else {
        let mut errors = ValidationErrors::default();
        errors.push(
            "caseType",
            format!("`{code}` is not a case type of `{}`", case.jurisdiction_id),
        );
        return Err(errors.into());
    };
    if code != from_type {
        if !case_type.active {
            let mut errors = ValidationErrors::default();
            errors.push("caseType", format!("case type `{code}` is retired"));
            return Err(errors.into());
        }
        // Values the new case type has no field for are dropped (and kept in the history).
        let (kept, dropped): (BTreeMap<String, Value>, BTreeMap<String, Value>) = case
            .fields
            .clone()
            .into_iter()
            .partition(|(k, _)| case_type.field(k).is_some());
        case.fields = case_type.validate_fields(&kept)?;
        case.case_type_code = code.clone();
        dropped_fields = dropped;
    }
    let before_route = case.route.clone();
    let previous_refs: Vec<(String, String)> = crate::entity::external_ref::Entity::find()
        .filter(crate::entity::external_ref::Column::CaseId.eq(case.id.as_str()))
        .all(&*txn)
        .await?
        .into_iter()
        .map(|r| (r.connector_id, r.external_id))
        .collect();
    let route = routing.route(&case, &case_type.agency_id);
    let now = Utc::now().trunc_subsecs(6);
    case::Entity::update_many()
        .col_expr(
            case::Column::CaseTypeId,
            sea_orm::sea_query::Expr::value(case_type_id(&case.jurisdiction_id, &code)),
        )
        .col_expr(
            case::Column::AgencyId,
            sea_orm::sea_query::Expr::value(route.agency.clone()),
        )
        .col_expr(
            case::Column::Fields,
            sea_orm::sea_query::Expr::value(
                serde_json::to_string(&case.fields).unwrap_or_else(|_| "{}".into()),
            ),
        )
        .col_expr(
            case::Column::Route,
            sea_orm::sea_query::Expr::value(serde_json::to_string(&route).ok()),
        )
        .filter(case::Column::Id.eq(case.id.as_str()))
        .exec(&*txn)
        .await?;
    bump(&*txn, &mut case, now, None).await?;
    case.agency_id = route.agency.clone();
    case.route = Some(route.clone());
    let cancelled = deliveries::cancel_unsent(&*txn, &case.id, now).await?;
    crate::entity::external_ref::Entity::delete_many()
        .filter(crate::entity::external_ref::Column::CaseId.eq(case.id.as_str()))
        .exec(&*txn)
        .await?;
    let refs: Vec<Value> = previous_refs
        .iter()
        .map(|(c, e)| json!({"connector": c, "external_id": e}))
        .collect();
    let data = json!({
        "route": route,
        "rerouted": true,
        "case_type": {"from": from_type, "to": code},
        "previous_route": before_route,
        "previous_external_refs": refs,
        "cancelled_deliveries": cancelled,
        "dropped_fields": dropped_fields,
    });
    insert_event(
        &*txn,
        &case.id,
        CaseEventKind::Routed,
        actor,
        now,
        data.clone(),
    )
    .await?;
    deliveries::insert_for_route(&*txn, &case, &route, &routing.methods, now).await?;
    audit::append(
        &*txn,
        &[actor.change(
            "case",
            &case.id,
            "reroute",
            json!({"case_type": from_type, "route": before_route, "external_refs": refs}),
            json!({"case_type": code, "route": route, "cancelled_deliveries": cancelled}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(case)
}
