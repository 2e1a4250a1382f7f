//! Rerouting a case: the domain's decision ([`junction_domain::reroute`]) persisted with the
//! case locked, its unsent deliveries cancelled and new ones made, in one transaction.

use chrono::{SubsecRound, Utc};
use junction_domain::reroute::Rerouted;
use junction_domain::{Actor, Case, CaseEventKind, RoutingTable};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::{Value, json};

use super::{bump, insert_event, load_for_update};
use crate::catalogue::{case_type_id, load_case_type};
use crate::entity::{case, external_ref};
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
    let code = new_case_type.unwrap_or(&case.case_type_code).to_string();
    let case_type = load_case_type(&*txn, &case.jurisdiction_id, &code).await?;
    let before_route = case.route.clone();
    let Rerouted {
        from_type,
        dropped_fields,
        route,
        ..
    } = junction_domain::reroute::reroute(&mut case, &code, case_type.as_ref(), routing)?;
    let previous_refs = external_refs(&*txn, &case.id).await?;
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
    let cancelled = deliveries::cancel_unsent(&*txn, &case.id, now).await?;
    external_ref::Entity::delete_many()
        .filter(external_ref::Column::CaseId.eq(case.id.as_str()))
        .exec(&*txn)
        .await?;
    let data = json!({
        "route": route,
        "rerouted": true,
        "case_type": {"from": from_type, "to": code},
        "previous_route": before_route,
        "previous_external_refs": previous_refs,
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
            json!({"case_type": from_type, "route": before_route, "external_refs": previous_refs}),
            json!({"case_type": code, "route": route, "cancelled_deliveries": cancelled}),
        )],
    )
    .await?;
    txn.commit().await?;
    Ok(case)
}

/// The references connectors gave the case, as its history records them.
async fn external_refs<C: ConnectionTrait>(
    txn: &C,
    case_id: &str,
) -> Result<Vec<Value>, StoreError> {
    Ok(external_ref::Entity::find()
        .filter(external_ref::Column::CaseId.eq(case_id))
        .all(txn)
        .await?
        .into_iter()
        .map(|r| json!({"connector": r.connector_id, "external_id": r.external_id}))
        .collect())
}
