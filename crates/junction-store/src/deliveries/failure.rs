//! An attempt that did not end in a delivery: retried on the policy's schedule, dead,
//! ambiguous (prove what happened first), or parked for a person's decision.

use chrono::{DateTime, SubsecRound, Utc};
use junction_domain::DeliveryId;
use junction_domain::delivery::AfterFailure;
use junction_domain::{Actor, AuditEntry, CaseEventKind, DeliveryState, RetryPolicy};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::json;

use super::settle::{Failure, load_sending};
use super::{Delivery, rand_unit, truncate};
use crate::StoreError;
use crate::cases::insert_event;
use crate::entity::delivery;

/// Why an attempt did not end in a delivery.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Unsent<'a> {
    /// The attempt failed (the back-end refused, or no answer came).
    Failed(&'a Failure, &'a RetryPolicy),
    /// Asking whether an earlier attempt arrived was inconclusive: ask again later.
    Unproved(&'a str, &'a RetryPolicy),
    /// Whether it arrived cannot be proved: a person decides.
    Park(&'a str),
}

/// Where the delivery goes next, and what it says.
struct Next {
    state: DeliveryState,
    at: DateTime<Utc>,
    error: String,
    ambiguous_since: Option<DateTime<Utc>>,
    checks: u32,
}

fn next(d: &Delivery, unsent: Unsent<'_>, now: DateTime<Utc>) -> Next {
    let since = d.ambiguous_since.or(Some(now));
    match unsent {
        Unsent::Failed(failure, policy) => {
            let decision = if failure.permanent && !failure.ambiguous {
                AfterFailure::GiveUp
            } else {
                policy.after_failure(
                    d.attempts.max(1),
                    d.first_attempt_at.unwrap_or(now),
                    now,
                    rand_unit(),
                )
            };
            let error = truncate(&failure.error);
            match (decision, failure.ambiguous) {
                (AfterFailure::RetryAt(t), false) => Next {
                    state: DeliveryState::Failed,
                    at: t.trunc_subsecs(6),
                    error,
                    ambiguous_since: None,
                    checks: 0,
                },
                (AfterFailure::GiveUp, false) => Next {
                    state: DeliveryState::Dead,
                    at: now,
                    error,
                    ambiguous_since: None,
                    checks: 0,
                },
                (AfterFailure::RetryAt(t), true) => Next {
                    state: DeliveryState::Ambiguous,
                    at: t.trunc_subsecs(6),
                    error,
                    ambiguous_since: since,
                    checks: d.checks,
                },
                // Past its maximum age with its outcome unknown: never dead on a guess.
                (AfterFailure::GiveUp, true) => Next {
                    state: DeliveryState::NeedsDecision,
                    at: now,
                    error: truncate(&format!(
                        "the delivery is past its maximum age and whether its last attempt \
                         arrived is unknown: {}",
                        failure.error
                    )),
                    ambiguous_since: since,
                    checks: d.checks,
                },
            }
        }
        Unsent::Unproved(why, policy) => {
            let checks = d.checks + 1;
            let delay = chrono::Duration::from_std(policy.delay(checks, rand_unit()))
                .unwrap_or(chrono::Duration::hours(1));
            Next {
                state: DeliveryState::Ambiguous,
                at: (now + delay).trunc_subsecs(6),
                error: truncate(&format!(
                    "whether the last attempt arrived is unknown: {why}"
                )),
                ambiguous_since: since,
                checks,
            }
        }
        Unsent::Park(why) => Next {
            state: DeliveryState::NeedsDecision,
            at: now,
            error: truncate(why),
            ambiguous_since: since,
            checks: d.checks,
        },
    }
}

/// Records `unsent` for delivery `id`, which must be `sending`, inside the caller's
/// transaction; a delivery that goes dead or waits for a person gets a case event and an
/// audit entry.
pub(crate) async fn unsent_in<C: ConnectionTrait>(
    conn: &C,
    id: DeliveryId,
    unsent: Unsent<'_>,
    now: DateTime<Utc>,
) -> Result<(Delivery, Option<AuditEntry>), StoreError> {
    let d = load_sending(conn, id).await?;
    let n = next(&d, unsent, now);
    let (response, token) = match unsent {
        Unsent::Failed(f, _) => (f.response.as_deref().map(truncate), f.token.clone()),
        _ => (d.last_response.clone(), d.payload.token.clone()),
    };
    let payload = junction_domain::DeliveryPayload {
        token,
        ..d.payload.clone()
    };
    delivery::Entity::update(delivery::ActiveModel {
        id: Set(id.0),
        state: Set(n.state.as_str().to_string()),
        payload: Set(serde_json::to_string(&payload).expect("a payload serialises")),
        queued_until: Set(None),
        lease_until: Set(None),
        lease_owner: Set(None),
        next_attempt_at: Set(n.at),
        last_error: Set(Some(n.error.clone())),
        last_response: Set(response.clone()),
        ambiguous_since: Set(n.ambiguous_since),
        checks: Set(n.checks as i32),
        updated_at: Set(now),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    let event = match n.state {
        DeliveryState::Dead => Some((CaseEventKind::DeliveryDead, "give_up", "error")),
        DeliveryState::NeedsDecision => Some((
            CaseEventKind::DeliveryNeedsDecision,
            "needs_decision",
            "reason",
        )),
        _ => None,
    };
    let mut entry = None;
    if let Some((kind, action, key)) = event {
        let actor = Actor::internal("delivery");
        let data = json!({
            "delivery": id,
            "connector": d.connector_id,
            "kind": d.kind.as_str(),
            key: n.error,
            "attempts": d.attempts,
        });
        insert_event(conn, &d.case_id, kind, &actor, now, data.clone()).await?;
        entry = Some(actor.change(
            "delivery",
            &id.to_string(),
            action,
            json!({"state": d.state.as_str()}),
            data,
        ));
    }
    Ok((
        Delivery {
            state: n.state,
            payload,
            next_attempt_at: n.at,
            last_error: Some(n.error),
            last_response: response,
            ambiguous_since: n.ambiguous_since,
            checks: n.checks,
            lease_owner: None,
            updated_at: now,
            ..d
        },
        entry,
    ))
}
