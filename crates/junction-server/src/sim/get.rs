//! `GET` answers: services, request lists (and lookups), tokens, single requests, updates.

use std::collections::BTreeMap;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use chrono::{DateTime, Utc};

use super::{SimRequest, SimState, Simulator, errors, escape, request_xml, status_of, xml};

/// The most requests one list holds, as council systems cap their answers.
pub const LIST_LIMIT: usize = 1_000;

pub(super) async fn get_top(
    State(sim): State<Simulator>,
    Path(file): Path<String>,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let mut s = sim.state.lock().expect("sim state");
    let now = Utc::now();
    if file == "servicerequestupdates.xml" {
        s.update_reads += 1;
    }
    match file.as_str() {
        "services.xml" => {
            let mut codes: Vec<&str> = s.requests.iter().map(|r| r.service_code.as_str()).collect();
            codes.sort_unstable();
            codes.dedup();
            xml(StatusCode::OK, format!(
                "<?xml version=\"1.0\" encoding=\"utf-8\"?><services>{}</services>",
                codes.iter().map(|c| format!("<service><service_code>{}</service_code><service_name>{}</service_name><metadata>false</metadata><type>realtime</type></service>", escape(c), escape(c))).collect::<String>()
            ))
        }
        "requests.xml" => {
            let wanted: Option<&String> = sim.id_attributes.iter().find_map(|a| query.get(a));
            let listed = list(&s, &query, wanted, now);
            let show_ids = !s.behaviour.hide_ids;
            let body: String = listed
                .into_iter()
                .take(LIST_LIMIT)
                .map(|r| request_xml(r, status_of(&s.behaviour, r, now), show_ids))
                .collect();
            xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests>{body}</service_requests>"
                ),
            )
        }
        "servicerequestupdates.xml" => super::updates::answer(&s, &query, now),
        _ => errors(StatusCode::NOT_FOUND, "not found"),
    }
}

/// The requests a `GET requests` answer lists: by `service_request_id`, the id attribute
/// (unless unknown filters are ignored) and the `start_date`/`end_date` window; or, told to
/// misbehave, someone else's request for a lookup by id.
fn list<'a>(
    s: &'a SimState,
    query: &BTreeMap<String, String>,
    wanted: Option<&String>,
    _now: DateTime<Utc>,
) -> Vec<&'a SimRequest> {
    let b = &s.behaviour;
    if b.lookup_answers_other
        && let Some(w) = wanted
    {
        return s
            .requests
            .iter()
            .filter(|r| r.client_id.as_ref() != Some(w))
            .take(1)
            .collect();
    }
    let (start, end) = super::window(query);
    let ids: Option<Vec<&str>> = query
        .get("service_request_id")
        .map(|v| v.split(',').collect());
    s.requests
        .iter()
        .filter(|r| {
            b.ignore_unknown_filters || wanted.is_none_or(|w| r.client_id.as_ref() == Some(w))
        })
        .filter(|r| {
            ids.as_ref()
                .is_none_or(|ids| ids.contains(&r.service_request_id.as_str()))
        })
        .filter(|r| {
            start.is_none_or(|t| r.created_at >= t) && end.is_none_or(|t| r.created_at <= t)
        })
        .collect()
}

pub(super) async fn get_nested(
    State(sim): State<Simulator>,
    Path((dir, file)): Path<(String, String)>,
) -> Response {
    let s = sim.state.lock().expect("sim state");
    let Some(id) = file.strip_suffix(".xml") else {
        return errors(StatusCode::NOT_FOUND, "Bad extension");
    };
    match dir.as_str() {
        "tokens" => {
            let Some(r) = s.requests.iter().find(|r| r.token.as_deref() == Some(id)) else {
                return errors(StatusCode::NOT_FOUND, "token not found");
            };
            if (Utc::now() - r.created_at).num_milliseconds() < s.behaviour.token_delay_ms as i64 {
                return errors(StatusCode::NOT_FOUND, "token not yet resolved");
            }
            xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests><request><service_request_id>{}</service_request_id><token>{}</token></request></service_requests>",
                    escape(&r.service_request_id),
                    escape(id)
                ),
            )
        }
        "requests" => match s.requests.iter().find(|r| r.service_request_id == id) {
            Some(r) => xml(
                StatusCode::OK,
                format!(
                    "<?xml version=\"1.0\" encoding=\"utf-8\"?><service_requests>{}</service_requests>",
                    request_xml(
                        r,
                        status_of(&s.behaviour, r, Utc::now()),
                        !s.behaviour.hide_ids
                    )
                ),
            ),
            None => errors(StatusCode::NOT_FOUND, "not found"),
        },
        _ => errors(StatusCode::NOT_FOUND, "not found"),
    }
}
