//! Reading cases over Open311 (`GET requests`, `GET requests/{id}`): only cases of published
//! types, each through the reader's lens. Anyone sees a case's public attributes; the client
//! that sent a case also sees its official ones; nobody sees personal data here.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use chrono::{Duration, Utc};
use junction_domain::{Case, CaseStatus, CaseType, Classification, Lens};
use junction_store::cases::{self, CaseFilter, CaseOrder, SortKey};
use junction_store::{catalogue, deliveries};

use super::common::{
    MAX_PAGE_SIZE, MAX_WINDOW_DAYS, case_by_reference, parse_time, require_key, store_refusal, w3c,
};
use super::format::{Node, render};
use super::{Call, Open311State, Refusal};

/// The deepest a page may start: `page` × `page_size` beyond this is refused at once, so every
/// page costs about the same. Narrow the window with `start_date`/`end_date` to reach older
/// cases.
pub const MAX_OFFSET: u64 = 10_000;

/// Who is reading, which decides what each case shows.
pub(super) enum Reader {
    Anonymous,
    /// The client named by a valid `api_key`.
    Client(String),
}

impl Reader {
    /// Reading needs no key (FixMyStreet sends `api_key=` empty); a key that is sent must be
    /// valid, and names the client.
    pub(super) async fn of(
        state: &Open311State,
        call: &mut Call,
        jurisdiction: &str,
    ) -> Result<Reader, Refusal> {
        if call.params.get("api_key").is_none() {
            return Ok(Reader::Anonymous);
        }
        Ok(Reader::Client(
            require_key(state, call, jurisdiction).await?,
        ))
    }

    /// Whether this reader is the client that made a case made by `created_by`.
    pub(super) fn sent(&self, created_by: &str) -> bool {
        match self {
            Reader::Anonymous => false,
            Reader::Client(c) => created_by.strip_prefix("open311:") == Some(c.as_str()),
        }
    }

    /// What this reader is told in `<status>`: the detailed (mySociety extended) status, which
    /// FixMyStreet reads from there, or plain `open`/`closed` for a client configured for
    /// strict GeoReport v2.
    pub(super) fn status_word(&self, state: &Open311State, status: CaseStatus) -> &'static str {
        match self {
            Reader::Client(c) if state.strict_clients.contains(c) => {
                if status.is_closed() {
                    "closed"
                } else {
                    "open"
                }
            }
            _ => status.as_str(),
        }
    }

    /// How this reader sees a case of `case_type` made by `created_by`.
    pub(super) fn lens(
        &self,
        state: &Open311State,
        created_by: &str,
        case_type: &Arc<CaseType>,
    ) -> Lens {
        Lens::Public {
            up_to: if self.sent(created_by) {
                Classification::Official
            } else {
                Classification::Public
            },
            core: state.core.clone(),
            case_type: Some(case_type.clone()),
        }
    }
}

/// The jurisdiction's published types, by code: the only ones Open311 shows.
pub(super) async fn published(
    state: &Open311State,
    jurisdiction: &str,
) -> Result<BTreeMap<String, Arc<CaseType>>, Refusal> {
    Ok(catalogue::case_types(&state.store, Some(jurisdiction))
        .await
        .map_err(store_refusal)?
        .into_iter()
        .filter(|t| t.published)
        .map(|t| (t.code.clone(), Arc::new(t)))
        .collect())
}

pub(super) async fn get_requests(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let reader = Reader::of(state, call, jurisdiction).await?;
    let types = published(state, jurisdiction).await?;
    let found = match call.params.get("service_request_id") {
        Some(ids) => by_ids(state, jurisdiction, ids).await?,
        None => in_window(state, call, jurisdiction, &types).await?,
    };
    let mut items = Vec::with_capacity(found.len());
    for case in &found {
        let Some(case_type) = types.get(&case.case_type_code) else {
            continue;
        };
        items.push(request_node(state, &reader, case, case_type).await?);
    }
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_requests",
        &Node::list("request", items),
    ))
}

pub(super) async fn get_request(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let reader = Reader::of(state, call, jurisdiction).await?;
    let types = published(state, jurisdiction).await?;
    let id = call.id.clone().unwrap_or_default();
    // A case of an unpublished type is as absent here as one that does not exist.
    let found = case_by_reference(state, jurisdiction, &id)
        .await?
        .and_then(|c| types.get(&c.case_type_code).cloned().map(|t| (c, t)));
    let Some((case, case_type)) = found else {
        return Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("service_request_id `{id}` not found"),
        ));
    };
    let node = request_node(state, &reader, &case, &case_type).await?;
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_requests",
        &Node::list("request", vec![node]),
    ))
}

async fn by_ids(state: &Open311State, jurisdiction: &str, ids: &str) -> Result<Vec<Case>, Refusal> {
    let ids: Vec<&str> = ids
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if ids.len() as u64 > MAX_PAGE_SIZE {
        return Err(Refusal::bad(format!(
            "service_request_id: at most {MAX_PAGE_SIZE} ids at once"
        )));
    }
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(c) = case_by_reference(state, jurisdiction, id).await? {
            out.push(c);
        }
    }
    Ok(out)
}

/// One page of the cases last changed in the window (the spec's `updated_datetime`, which is
/// what FixMyStreet's imports ask for), most recently changed first: one list query, whatever
/// the page.
async fn in_window(
    state: &Open311State,
    call: &Call,
    jurisdiction: &str,
    types: &BTreeMap<String, Arc<CaseType>>,
) -> Result<Vec<Case>, Refusal> {
    let end = parse_time(call, "end_date")?.unwrap_or_else(Utc::now);
    let start = parse_time(call, "start_date")?.unwrap_or(end - Duration::days(MAX_WINDOW_DAYS));
    if start > end {
        return Err(Refusal::bad("start_date: is after end_date"));
    }
    if end - start > Duration::days(MAX_WINDOW_DAYS) {
        return Err(Refusal::bad(format!(
            "start_date: the window may span at most {MAX_WINDOW_DAYS} days"
        )));
    }
    let statuses = statuses(call)?;
    let page_size = number(call, "page_size", 100, MAX_PAGE_SIZE)?;
    let page = number(call, "page", 1, u64::MAX)?;
    let offset = (page - 1).saturating_mul(page_size);
    if offset > MAX_OFFSET {
        return Err(Refusal::bad(format!(
            "page: pages may start at most {MAX_OFFSET} cases in; narrow the window with start_date and end_date"
        )));
    }
    let case_types: Vec<String> = match call.params.get("service_code") {
        Some(code) if types.contains_key(code) => vec![code.to_string()],
        Some(_) => return Ok(Vec::new()),
        None => types.keys().cloned().collect(),
    };
    if case_types.is_empty() {
        return Ok(Vec::new());
    }
    let filter = CaseFilter {
        jurisdiction_id: Some(jurisdiction.to_string()),
        case_types,
        statuses,
        updated_from: Some(start),
        updated_to: Some(end + Duration::seconds(1)),
        order: Some(CaseOrder {
            key: SortKey::UpdatedAt,
            descending: true,
            offset,
        }),
        ..CaseFilter::default()
    };
    Ok(cases::list(&state.store, &filter, page_size, None)
        .await
        .map_err(store_refusal)?
        .cases)
}

/// `status`: `open`, `closed` or Junction's own statuses, comma-separated; none means all.
fn statuses(call: &Call) -> Result<Vec<CaseStatus>, Refusal> {
    let mut out = Vec::new();
    for s in call
        .params
        .get("status")
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect::<Vec<&str>>()
        })
        .unwrap_or_default()
    {
        match s {
            "open" => out.extend(CaseStatus::ALL.iter().filter(|c| !c.is_closed())),
            "closed" => out.extend(CaseStatus::ALL.iter().filter(|c| c.is_closed())),
            other => out.push(CaseStatus::parse(other).ok_or_else(|| {
                Refusal::bad(format!(
                    "status: `{other}` is not open, closed or an extended status"
                ))
            })?),
        }
    }
    Ok(out)
}

/// A whole number parameter from 1 to `max`, or `default` when absent.
fn number(call: &Call, name: &str, default: u64, max: u64) -> Result<u64, Refusal> {
    match call.params.get(name) {
        None => Ok(default),
        Some(s) => s
            .parse::<u64>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                Refusal::bad(if max == u64::MAX {
                    format!("{name}: must be a whole number from 1")
                } else {
                    format!("{name}: must be a whole number from 1 to {max}")
                })
            }),
    }
}

/// A case as this reader may see it: never submitter details or field values, and each core
/// attribute only when the reader's lens shows it.
async fn request_node(
    state: &Open311State,
    reader: &Reader,
    case: &Case,
    case_type: &Arc<CaseType>,
) -> Result<Node, Refusal> {
    let lens = reader.lens(state, &case.created_by, case_type);
    let shown = lens.redact(case);
    let external = if lens.shows("route") {
        external_id(state, case).await?
    } else {
        None
    };
    let agency = case
        .route
        .as_ref()
        .map_or(case.agency_id.as_str(), |r| r.agency.as_str());
    Ok(Node::Object(vec![
        ("service_request_id", Node::text(&case.reference)),
        ("status", Node::text(reader.status_word(state, case.status))),
        ("extended_status", Node::text(case.status.as_str())),
        ("status_notes", Node::Null),
        ("service_name", Node::text(&case_type.name)),
        ("service_code", Node::text(&case.case_type_code)),
        (
            "description",
            if lens.shows("description") {
                Node::text(&shown.description)
            } else {
                Node::Null
            },
        ),
        (
            "agency_responsible",
            if lens.shows("agency") {
                Node::text(agency)
            } else {
                Node::Null
            },
        ),
        ("service_notice", Node::Null),
        ("requested_datetime", Node::text(w3c(case.created_at))),
        ("updated_datetime", Node::text(w3c(case.updated_at))),
        ("expected_datetime", Node::Null),
        ("address", Node::opt(shown.location.address.clone())),
        ("address_id", Node::opt(shown.location.uprn.clone())),
        ("zipcode", Node::Null),
        ("lat", shown.location.lat.map_or(Node::Null, Node::Number)),
        ("long", shown.location.long.map_or(Node::Null, Node::Number)),
        // The spec has one photo per request; the first stands for them all.
        ("media_url", Node::opt(shown.media_urls.first().cloned())),
        // Where the case went: the council system's own reference (a mySociety-style extra).
        ("external_id", Node::opt(external)),
    ]))
}

async fn external_id(state: &Open311State, case: &Case) -> Result<Option<String>, Refusal> {
    let refs = deliveries::external_refs(&state.store, &case.id)
        .await
        .map_err(store_refusal)?;
    let main = case.route.as_ref().and_then(|r| r.connector.as_deref());
    Ok(refs
        .iter()
        .find(|(c, _)| Some(c.as_str()) == main)
        .or(refs.first())
        .map(|(_, id)| id.clone()))
}
