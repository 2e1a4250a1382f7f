//! Deliveries made with their case: what a route calls for, and cancelling what a reroute
//! replaces.

use chrono::{DateTime, Utc};
use junction_domain::DeliveryId;
use junction_domain::delivery::{PlannedDelivery, idempotency_key, plan};
use junction_domain::route::{Route, SendMethods};
use junction_domain::{Case, DeliveryKind, DeliveryPayload, DeliveryState};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::StoreError;
use crate::entity::{agency, delivery};

pub(crate) fn new_row(
    case: &Case,
    connector: &str,
    kind: DeliveryKind,
    payload: &DeliveryPayload,
    now: DateTime<Utc>,
) -> delivery::ActiveModel {
    delivery::ActiveModel {
        case_id: Set(case.id.clone()),
        connector_id: Set(connector.to_string()),
        agency_id: Set(case.agency_id.clone()),
        kind: Set(kind.as_str().to_string()),
        state: Set(DeliveryState::Pending.as_str().to_string()),
        idempotency_key: Set(idempotency_key(&case.id, connector, kind, None)),
        attempts: Set(0),
        first_attempt_at: Set(None),
        next_attempt_at: Set(now),
        lease_until: Set(None),
        queued_until: Set(None),
        last_error: Set(None),
        last_response: Set(None),
        external_ref: Set(None),
        payload: Set(serde_json::to_string(payload).expect("a payload serialises")),
        created_at: Set(now),
        updated_at: Set(now),
        sent_at: Set(None),
        lease_owner: Set(None),
        ambiguous_since: Set(None),
        checks: Set(0),
        ..Default::default()
    }
}

/// Creates the deliveries `route` calls for ([`junction_domain::delivery::plan`]), inside the
/// caller's transaction: for a reroute, whose route is decided in the same transaction.
pub(crate) async fn insert_for_route<C: ConnectionTrait>(
    conn: &C,
    case: &Case,
    route: &Route,
    methods: &SendMethods,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let agency_email = agency::Entity::find_by_id(route.agency.as_str())
        .one(conn)
        .await?
        .and_then(|a| a.email);
    let planned = plan(route, methods, agency_email.as_deref());
    insert_planned(conn, case, &planned, now).await
}

/// Creates the deliveries intake planned for `case`, inside the caller's transaction: one that
/// nothing can carry is created dead with its reason.
pub(crate) async fn insert_planned<C: ConnectionTrait>(
    conn: &C,
    case: &Case,
    planned: &[PlannedDelivery],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let rows: Vec<delivery::ActiveModel> = planned
        .iter()
        .map(|p| {
            let payload = DeliveryPayload::to(p.to.clone());
            let mut row = new_row(case, &p.connector, p.kind, &payload, now);
            if let Some(why) = &p.dead {
                row.state = Set(DeliveryState::Dead.as_str().to_string());
                row.last_error = Set(Some(why.clone()));
            }
            row
        })
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    delivery::Entity::insert_many(rows)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Cancels a case's deliveries that have not been sent (or are not being sent); returns their
/// ids. One in the middle of an attempt is left to finish.
pub(crate) async fn cancel_unsent<C: ConnectionTrait>(
    conn: &C,
    case_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<DeliveryId>, StoreError> {
    let rows = delivery::Entity::find()
        .filter(delivery::Column::CaseId.eq(case_id))
        .filter(delivery::Column::State.is_in(["pending", "failed"]))
        .all(conn)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    if !ids.is_empty() {
        delivery::Entity::update_many()
            .col_expr(
                delivery::Column::State,
                sea_orm::sea_query::Expr::value(DeliveryState::Cancelled.as_str()),
            )
            .col_expr(
                delivery::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(now),
            )
            .filter(delivery::Column::Id.is_in(ids.clone()))
            .exec(conn)
            .await?;
    }
    Ok(ids.into_iter().map(DeliveryId).collect())
}
