//! `POST servicerequestupdates` from a back-end: the update it made on a case Junction sent
//! it, pushed rather than polled. The back-end's key is bound to its connector (`junction
//! api-key create NAME --connector ID`), so it speaks only for the cases that connector holds,
//! and its status words mean what that connector's status map says. The update is applied as a
//! polled one is: once per (connector, `update_id`), never over a newer state, held until the
//! case's reference is known.
//!
//! Answers: 200 with Junction's id for the update (the same id when the back-end sends it
//! again); 202 with an empty list when it is held for a reference not yet known; 400 naming
//! each argument that is missing or unreadable.

use axum::http::StatusCode;
use axum::response::Response;
use junction_domain::inbound::{InboundUpdate, source_of};
use junction_store::inbound::{self, Outcome};
use junction_store::updates;

use super::common::{parse_time, store_refusal};
use super::format::{Node, render};
use super::{Call, Open311State, Refusal};

/// The arguments that carry Junction's own id for the case, where the back-end echoes it.
const OUR_ID_ARGUMENTS: [&str; 2] = ["junction_id", "fixmystreet_id"];

/// Reads a back-end's update from the call, naming every problem.
fn read(call: &Call) -> Result<InboundUpdate, Refusal> {
    let mut problems = Vec::new();
    for required in ["update_id", "service_request_id", "updated_datetime"] {
        if call
            .params
            .get(required)
            .is_none_or(|v| v.trim().is_empty())
        {
            problems.push(format!("{required}: is required"));
        }
    }
    let updated_at = match parse_time(call, "updated_datetime") {
        Ok(t) => t,
        Err(r) => {
            problems.extend(r.descriptions);
            None
        }
    };
    let description = call.params.get("description").unwrap_or("").to_string();
    if description.chars().count() > junction_domain::case::MAX_NOTE_CHARS {
        problems.push(format!(
            "description: is longer than {} characters",
            junction_domain::case::MAX_NOTE_CHARS
        ));
    }
    let (Some(updated_at), true) = (updated_at, problems.is_empty()) else {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            descriptions: problems,
        });
    };
    let text = |name: &str| {
        call.params
            .get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    Ok(InboundUpdate {
        update_id: text("update_id").unwrap_or_default(),
        external_ref: text("service_request_id").unwrap_or_default(),
        our_id: OUR_ID_ARGUMENTS.iter().find_map(|a| text(a)),
        status: text("status"),
        external_status_code: text("external_status_code"),
        description,
        media_urls: call.params.media_urls(),
        updated_at,
    })
}

pub(super) async fn post(
    state: &Open311State,
    call: &mut Call,
    connector: &str,
) -> Result<Response, Refusal> {
    let update = read(call)?;
    let statuses = state.inbound.get(connector).cloned().unwrap_or_default();
    let mapped = statuses.map(
        update.status.as_deref(),
        update.external_status_code.as_deref(),
    );
    let outcome = inbound::apply_batch(&state.store, connector, &[(update.clone(), mapped)])
        .await
        .map_err(store_refusal)?
        .pop()
        .ok_or_else(Refusal::internal)?;
    let answer = |status: StatusCode, ids: Vec<i64>| {
        let items = ids
            .into_iter()
            .map(|id| Node::Object(vec![("update_id", Node::text(id.to_string()))]))
            .collect();
        render(
            call.format,
            status,
            "service_request_updates",
            &Node::list("request_update", items),
        )
    };
    match outcome {
        Outcome::Applied { update: id, .. } => Ok(answer(StatusCode::OK, vec![id])),
        Outcome::Repeat => {
            // Sent again (the back-end lost our answer): the same id, nothing changed.
            let stored =
                updates::by_source_id(&state.store, &source_of(connector), &update.update_id)
                    .await
                    .map_err(store_refusal)?;
            match stored {
                Some(u) => Ok(answer(StatusCode::OK, vec![u.id])),
                None => Ok(answer(StatusCode::ACCEPTED, vec![])),
            }
        }
        Outcome::Held => Ok(answer(StatusCode::ACCEPTED, vec![])),
    }
}
