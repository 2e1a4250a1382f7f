//! `GET servicerequestupdates`: the changes each request went through (to `in_progress`, then
//! `fixed`, at the times the behaviour sets), each with a stable id and the time it happened,
//! in the `start_date`/`end_date` window; told to, the list repeats itself or is an HTML page.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};

use super::{SimRequest, SimState, escape, xml};

/// The changes request `r` has gone through by `now`: (status, when).
fn changes(s: &SimState, r: &SimRequest, now: DateTime<Utc>) -> Vec<(&'static str, DateTime<Utc>)> {
    let b = &s.behaviour;
    [
        ("in_progress", b.progress_after_secs),
        ("fixed", b.fixed_after_secs),
    ]
    .into_iter()
    .filter_map(|(status, after)| {
        let at = r.created_at + Duration::seconds(after? as i64);
        (at <= now).then_some((status, at))
    })
    .collect()
}

pub(super) fn answer(
    s: &SimState,
    query: &BTreeMap<String, String>,
    now: DateTime<Utc>,
) -> Response {
    if s.behaviour.updates_html {
        return (
            StatusCode::OK,
            [("content-type", "text/html")],
            "<!DOCTYPE html><html><body><h1>Service temporarily unavailable</h1></body></html>",
        )
            .into_response();
    }
    let (start, end) = super::window(query);
    let mut body = String::new();
    for r in &s.requests {
        for (status, at) in changes(s, r, now) {
            if start.is_some_and(|t| at < t) || end.is_some_and(|t| at > t) {
                continue;
            }
            let ours = match (&r.client_id, s.behaviour.hide_ids) {
                (Some(id), false) => format!("<junction_id>{}</junction_id>", escape(id)),
                _ => String::new(),
            };
            let one = format!(
                "<request_update><update_id>{id}_{status}</update_id><service_request_id>{id}</service_request_id>{ours}<status>{status}</status><updated_datetime>{}</updated_datetime><description>Status is now {status}</description><media_url></media_url></request_update>",
                at.format("%Y-%m-%dT%H:%M:%SZ"),
                id = escape(&r.service_request_id),
            );
            body.push_str(&one);
            if s.behaviour.duplicate_updates {
                body.push_str(&one);
            }
        }
    }
    xml(
        StatusCode::OK,
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests_updates>{body}</service_requests_updates>"
        ),
    )
}
