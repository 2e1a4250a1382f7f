//! `servicerequestupdates`: updates going out to front-ends in a time window, and updates
//! coming in from them.

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, Utc};
use junction_domain::{CaseStatus, CaseUpdate, Lens};
use junction_store::updates::{self, NewUpdate};

use super::common::{
    MAX_PAGE_SIZE, MAX_WINDOW_DAYS, case_by_reference, client_actor, parse_time, store_refusal,
    verified_key, w3c,
};
use super::format::{Node, render};
use super::reads::{Reader, published};
use super::{Call, Open311State, Refusal};

/// An update as `reader` may see it: the status the case took (in the reader's words for
/// statuses), its text and media only when the reader's lens shows `updates` (a status
/// change's public notice always), and the front-end's own id for the case only to that
/// front-end.
fn update_node(state: &Open311State, u: &CaseUpdate, reader: &Reader, lens: &Lens) -> Node {
    // A status change's text is the configured public notice; a person's words follow the
    // reader's lens.
    let text = lens.shows("updates") || u.source == updates::JUNCTION_SOURCE;
    let mut fields = vec![
        ("update_id", Node::text(u.id.to_string())),
        ("service_request_id", Node::text(&u.case_reference)),
        // The status the case took, never one it was asked to take and did not.
        (
            "status",
            Node::text(reader.status_word(state, u.case_status)),
        ),
        ("updated_datetime", Node::text(w3c(u.updated_at))),
        (
            "description",
            Node::text(if text { u.description.as_str() } else { "" }),
        ),
        (
            "media_url",
            Node::text(
                u.media_urls
                    .first()
                    .filter(|_| text)
                    .cloned()
                    .unwrap_or_default(),
            ),
        ),
    ];
    if let Some(code) = &u.external_status_code {
        fields.push(("external_status_code", Node::text(code)));
    }
    if let Some(id) = &u.case_source_ref
        && reader.sent(&u.case_created_by)
    {
        fields.push(("fixmystreet_id", Node::text(id)));
    }
    Node::Object(fields)
}

pub(super) async fn get_updates(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    // A key names the client, so its own updates are not echoed back to it.
    let reader = Reader::of(state, call, jurisdiction).await?;
    let types = published(state, jurisdiction).await?;
    let codes: Vec<String> = types.keys().cloned().collect();
    let start = parse_time(call, "start_date")?;
    let end = parse_time(call, "end_date")?;
    let (start, end) = match (start, end) {
        (Some(s), Some(e)) => (s, e),
        (None, None) => {
            let now = Utc::now();
            (now - Duration::hours(24), now)
        }
        (Some(s), None) => (s, Utc::now()),
        (None, Some(_)) => return Err(Refusal::bad("start_date: is required with end_date")),
    };
    if start > end {
        return Err(Refusal::bad("start_date: is after end_date"));
    }
    if end - start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(Refusal::bad(format!(
            "start_date: the window may span at most {MAX_WINDOW_DAYS} days"
        )));
    }
    let exclude = call.client.as_ref().map(|c| format!("open311:{c}"));
    let found = updates::in_window(
        &state.store,
        jurisdiction,
        &codes,
        start,
        end,
        exclude.as_deref(),
        MAX_PAGE_SIZE,
    )
    .await
    .map_err(store_refusal)?;
    let items = found
        .iter()
        .filter_map(|u| {
            let case_type = types.get(&u.case_type_code)?;
            let lens = reader.lens(state, &u.case_created_by, case_type);
            Some(update_node(state, u, &reader, &lens))
        })
        .collect();
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_request_updates",
        &Node::list("request_update", items),
    ))
}

/// Open311's upper-case statuses, as FixMyStreet sends them, in Junction's terms.
fn posted_status(s: &str) -> Option<CaseStatus> {
    let lower = s.to_ascii_lowercase();
    match lower.as_str() {
        "open" | "reopen" | "confirmed" => Some(CaseStatus::Open),
        "planned" => Some(CaseStatus::ActionScheduled),
        other => CaseStatus::parse(other),
    }
}

/// A front-end's update's status and time, or every problem with its arguments.
fn read_front_end_update(
    call: &Call,
) -> Result<(Option<CaseStatus>, Option<chrono::DateTime<chrono::Utc>>), Refusal> {
    let mut problems = Vec::new();
    for required in [
        "service_request_id",
        "update_id",
        "status",
        "updated_datetime",
        "description",
    ] {
        if call.params.get(required).is_none() {
            problems.push(format!("{required}: is required"));
        }
    }
    let status = call
        .params
        .get("status")
        .map(|s| posted_status(s).ok_or_else(|| format!("status: `{s}` is not an Open311 status")));
    if let Some(Err(why)) = &status {
        problems.push(why.clone());
    }
    let updated_at = match parse_time(call, "updated_datetime") {
        Ok(t) => t,
        Err(r) => {
            problems.extend(r.descriptions);
            None
        }
    };
    if let Some(d) = call.params.get("description")
        && d.chars().count() > junction_domain::case::MAX_NOTE_CHARS
    {
        problems.push(format!(
            "description: is longer than {} characters",
            junction_domain::case::MAX_NOTE_CHARS
        ));
    }
    if !problems.is_empty() {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            descriptions: problems,
        });
    }
    Ok((status.and_then(Result::ok), updated_at))
}

pub(super) async fn post_update(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let key = verified_key(state, call, jurisdiction).await?;
    if let Some(connector) = key.connector_id.as_deref() {
        return super::backend_updates::post(state, call, connector).await;
    }
    let client = key.name;
    let (status, updated_at) = read_front_end_update(call)?;
    let reference = call.params.get("service_request_id").unwrap_or_default();
    let types = published(state, jurisdiction).await?;
    let case = case_by_reference(state, jurisdiction, reference)
        .await?
        .filter(|c| types.contains_key(&c.case_type_code))
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("service_request_id `{reference}` not found"),
            )
        })?;
    // A front-end speaks for the cases it sent, not for anyone else's.
    if !Reader::Client(client.clone()).sent(&case.created_by) {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!("service_request_id: case `{reference}` was not sent by this client"),
        ));
    }
    let actor = client_actor(call, &client);
    let update = NewUpdate {
        source: format!("open311:{client}"),
        source_update_id: call.params.get("update_id").map(str::to_string),
        status,
        external_status_code: call.params.get("external_status_code").map(str::to_string),
        description: call.params.get("description").unwrap_or("").to_string(),
        media_urls: call.params.media_urls(),
        updated_at,
        files: call.params.files().to_vec(),
        refused_files: call.params.refused_files().to_vec(),
    };
    // A front-end's update is the citizen's word, recorded on the case; the status stays the
    // back-end's to change.
    let stored = updates::record(&state.store, &actor, &case.id, update)
        .await
        .map_err(store_refusal)?;
    let tree = Node::list(
        "request_update",
        vec![Node::Object(vec![(
            "update_id",
            Node::text(stored.id.to_string()),
        )])],
    );
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_request_updates",
        &tree,
    ))
}
