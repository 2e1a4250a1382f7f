//! Attempting one delivery: claim it, prove what became of an unanswered earlier attempt,
//! call the connector, record the outcome.
//!
//! An attempt whose outcome is unknown (no answer came, or the process sending it died) leaves
//! the delivery ambiguous. Its next attempt decides with [`next_after_unknown`] from what the
//! connector can prove: asked and found (sent, with the reference found), proved absent or
//! de-duplicated by the other side (sent again), inconclusive (asked again later, then parked),
//! or nothing provable (parked for a person). Nothing is resent blindly or marked sent on a
//! guess.

use std::time::Duration;

use junction_connectors::{Accepted, OutFile, Outbound, Refused, RetryClass};
use junction_domain::{
    DeliveryId, DeliveryKind, DeliveryState, Finding, NextStep, RetryPolicy, next_after_unknown,
};
use junction_store::deliveries::{self, Delivery, Failure, Settle};
use junction_store::{StoreError, cases};

use crate::notice::partner_notice;
use crate::runner::{ConnectorHandle, Outcome, Runner};

/// How much longer than the connector's own timeout a claim is held: the attempt's guard
/// (the timeout plus [`GUARD_MARGIN`]) always fires first, so a live attempt never outlives
/// its lease.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// How much longer than its own timeout a connector call may run before it is abandoned.
const GUARD_MARGIN: Duration = Duration::from_secs(15);

/// Attempts delivery `id` once, if it is due: claim, prove an unknown outcome first, call the
/// connector, record the outcome.
pub async fn attempt(runner: &Runner, id: DeliveryId) -> Result<Outcome, StoreError> {
    let Some(d) = deliveries::get(&runner.store, id).await? else {
        return Ok(Outcome::Skipped);
    };
    let Some(connector) = runner.connectors.get(&d.connector_id).cloned() else {
        // Configuration no longer names this connector: the delivery waits (and shows as
        // pending) until it is configured again or the case is rerouted.
        tracing::warn!(
            delivery = %id,
            connector = d.connector_id,
            "delivery to an unknown connector"
        );
        return Ok(Outcome::Skipped);
    };
    let lease = connector.timeout + LEASE_MARGIN;
    let Some(d) = runner.batcher.claim(id, lease).await? else {
        return Ok(Outcome::Skipped);
    };
    let found = cases::get_by_id(&runner.store, &d.case_id).await?;
    // A notice to a partner shows only what its agreement allows, and goes only while the
    // agreement is active and the case still shared.
    let (case, notice) = match (found, d.kind) {
        (Some(case), DeliveryKind::PartnerNotice) => match partner_notice(runner, &d, &case).await?
        {
            Ok((redacted, notice)) => (Some(redacted), Some(notice)),
            Err(why) => return give_up(runner, &d, why, connector.policy).await,
        },
        (found, _) => (found, None),
    };
    let Some(case) = case else {
        let why = format!("case {} no longer exists", d.case_id);
        return give_up(runner, &d, why, connector.policy).await;
    };
    let service_name = runner
        .service_name(&case.jurisdiction_id, &case.case_type_code)
        .await?;
    // The case's files, for a connector that sends them (photos sent by address fetched
    // first, where allowed); never in a notice to a partner.
    let stored = if connector.deliver.sends_files() && d.kind != DeliveryKind::PartnerNotice {
        crate::media::fetch_missing(runner, &case).await?;
        junction_store::attachments::of_case_with_data(&runner.store, &case.id).await?
    } else {
        Vec::new()
    };
    let files: Vec<OutFile<'_>> = stored
        .iter()
        .map(|(a, data)| OutFile {
            part: &a.part,
            file_name: &a.file_name,
            content_type: &a.content_type,
            data,
        })
        .collect();
    let out = Outbound {
        case: &case,
        service_name: &service_name,
        route: case.route.as_ref(),
        idempotency_key: &d.idempotency_key,
        attempt: d.attempts,
        first_attempt_at: d.first_attempt_at,
        pending_token: d.payload.token.as_deref(),
        to: &d.payload.to,
        notice: notice.as_deref(),
        files: &files,
    };
    let guard = connector.timeout + GUARD_MARGIN;
    let unsure = d.ambiguous_since.is_some() && out.pending_token.is_none();
    let mut proved_absent = false;
    if unsure {
        match prove(&connector, &d, &out, guard).await {
            Proved::Settle(settle) => return record(runner, &d, &connector, settle).await,
            Proved::Send { absent } => proved_absent = absent,
        }
    }
    // The connector has its own timeout; this one guards against a connector that ignores it.
    let answer = tokio::time::timeout(guard, connector.deliver.deliver(&out)).await;
    let settle = settle_from(answer.ok(), id, &connector, unsure && !proved_absent);
    record(runner, &d, &connector, settle).await
}

/// What an attempt's answer (`None` when none came in time) settles the delivery as.
/// `maybe_arrived`: an earlier unanswered attempt, not proved absent, may still have arrived.
fn settle_from(
    answer: Option<Result<Accepted, Refused>>,
    id: DeliveryId,
    connector: &ConnectorHandle,
    maybe_arrived: bool,
) -> Settle {
    match answer {
        Some(Ok(accepted)) => Settle::Sent {
            id,
            external_ref: accepted.external_ref,
            response: accepted.response,
            found: None,
            notes: accepted.notes,
        },
        Some(Err(refused)) => {
            let class = connector.base.classify(&refused.error);
            Settle::Failed {
                id,
                failure: Failure {
                    error: refused.error.message.clone(),
                    response: refused.error.response.clone(),
                    permanent: class == RetryClass::Stop,
                    // An earlier unanswered attempt not proved absent may still have arrived.
                    ambiguous: class == RetryClass::Unknown || maybe_arrived,
                    token: refused.token.clone(),
                },
                policy: connector.policy,
            }
        }
        None => Settle::Failed {
            id,
            failure: Failure {
                error: "the attempt did not finish in time".into(),
                response: None,
                permanent: false,
                ambiguous: true,
                token: None,
            },
            policy: connector.policy,
        },
    }
}

/// What proving an unknown outcome came to.
enum Proved {
    /// Record this, and send nothing.
    Settle(Settle),
    /// Send: `absent` when the other side was asked and proved it did not arrive.
    Send { absent: bool },
}

/// Decides what to do with a delivery whose last attempt may have arrived, asking the other
/// side when the connector can.
async fn prove(
    connector: &ConnectorHandle,
    d: &Delivery,
    out: &Outbound<'_>,
    guard: Duration,
) -> Proved {
    let proof = connector.deliver.proof();
    let policy = &connector.policy;
    let expired = d.first_attempt_at.is_some_and(|first| {
        chrono::Utc::now() - first
            > chrono::Duration::from_std(policy.max_age).unwrap_or(chrono::Duration::MAX)
    });
    let mut finding = None;
    let mut step = next_after_unknown(proof, None, d.checks, policy, expired);
    if step == NextStep::Ask {
        let found = tokio::time::timeout(guard, connector.deliver.find(out))
            .await
            .unwrap_or_else(|_| Finding::Inconclusive("the check did not finish in time".into()));
        step = next_after_unknown(proof, Some(&found), d.checks, policy, expired);
        finding = Some(found);
    }
    tracing::info!(
        delivery = %d.id,
        connector = d.connector_id,
        finding = ?finding,
        step = ?step,
        "proving the outcome of an unanswered attempt"
    );
    match step {
        NextStep::Arrived(reference) => Proved::Settle(Settle::Sent {
            id: d.id,
            external_ref: Some(reference),
            response: None,
            found: Some("found at the other side by its id after an unanswered attempt".into()),
            notes: Vec::new(),
        }),
        NextStep::Send => Proved::Send {
            absent: finding == Some(Finding::Absent),
        },
        NextStep::AskLater(why) => Proved::Settle(Settle::Unproved {
            id: d.id,
            why,
            policy: *policy,
        }),
        NextStep::Park(why) => Proved::Settle(Settle::Park { id: d.id, why }),
        NextStep::Ask => Proved::Settle(Settle::Unproved {
            id: d.id,
            why: "the connector was not asked".into(),
            policy: *policy,
        }),
    }
}

/// Records `settle` for `d`, counts it, and alerts when a person must decide.
async fn record(
    runner: &Runner,
    d: &Delivery,
    connector: &ConnectorHandle,
    settle: Settle,
) -> Result<Outcome, StoreError> {
    let after = runner.batcher.settle(settle).await?;
    let state = after.state;
    metrics::counter!("junction_deliveries_total", "connector" => d.connector_id.clone(), "outcome" => state.as_str()).increment(1);
    match state {
        DeliveryState::Sent => {}
        DeliveryState::NeedsDecision => {
            tracing::error!(
                delivery = %d.id,
                case = d.case_id,
                connector = d.connector_id,
                reason = after.last_error.as_deref().unwrap_or_default(),
                "a delivery needs a person's decision: whether it arrived cannot be proved"
            );
        }
        _ => tracing::info!(
            delivery = %d.id,
            connector = d.connector_id,
            attempt = d.attempts,
            state = state.as_str(),
            error = after.last_error.as_deref().unwrap_or_default(),
            "delivery attempt did not deliver"
        ),
    }
    if connector.ordered {
        // The next delivery to an ordered connector is taken only once this one is settled.
        runner.wake.notify_one();
    }
    Ok(Outcome::Settled(state))
}

/// Settles a delivery as failed for good, with `why`, without attempting it.
async fn give_up(
    runner: &Runner,
    d: &Delivery,
    why: String,
    policy: RetryPolicy,
) -> Result<Outcome, StoreError> {
    let failure = Failure {
        error: why,
        response: None,
        permanent: true,
        ambiguous: false,
        token: None,
    };
    let after = runner
        .batcher
        .settle(Settle::Failed {
            id: d.id,
            failure,
            policy,
        })
        .await?;
    Ok(Outcome::Settled(after.state))
}
