//! The Open311 endpoints.

use std::collections::BTreeMap;

use axum::http::{Method, StatusCode};
use axum::response::Response;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use junction_domain::{
    Actor, Case, CaseStatus, CaseType, Location, NewCase, Submitter, ValidationErrors,
};
use junction_store::cases::{self, CaseFilter};
use junction_store::{StoreError, api_keys, catalogue, deliveries};
use serde_json::Value;

use super::format::{Node, render};
use super::{Call, Open311State, Refusal, updates};

/// Attributes a front-end may send that carry its own id for the case rather than a field.
const FRONT_END_ID_ATTRIBUTES: [&str; 1] = ["fixmystreet_id"];

/// Longest window `GET requests` and `GET servicerequestupdates` serve.
pub(super) const MAX_WINDOW_DAYS: i64 = 90;

/// Most requests or updates one call returns.
pub(super) const MAX_PAGE_SIZE: u64 = 1_000;

pub(super) async fn dispatch(state: &Open311State, call: &mut Call) -> Result<Response, Refusal> {
    let jurisdiction = jurisdiction(state, call).await?;
    match (&call.method, call.endpoint.as_str(), call.id.is_some()) {
        (&Method::GET, "discovery", false) => Ok(discovery(call)),
        (&Method::GET, "services", false) => services(state, call, &jurisdiction).await,
        (&Method::GET, "services", true) => service_definition(state, call, &jurisdiction).await,
        (&Method::POST, "requests", false) => post_request(state, call, &jurisdiction).await,
        (&Method::GET, "requests", false) => get_requests(state, call, &jurisdiction).await,
        (&Method::GET, "requests", true) => get_request(state, call, &jurisdiction).await,
        (&Method::GET, "tokens", true) => get_token(state, call, &jurisdiction).await,
        (&Method::GET, "servicerequestupdates", false) => {
            updates::get_updates(state, call, &jurisdiction).await
        }
        (&Method::POST, "servicerequestupdates", false) => {
            updates::post_update(state, call, &jurisdiction).await
        }
        (_, "discovery" | "services" | "requests" | "tokens" | "servicerequestupdates", _) => {
            Err(Refusal::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{} is not allowed here", call.method),
            ))
        }
        _ => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("no such endpoint: {}", call.endpoint),
        )),
    }
}

pub(super) fn store_refusal(e: StoreError) -> Refusal {
    match e {
        StoreError::NotFound { kind, id } => {
            Refusal::new(StatusCode::NOT_FOUND, format!("{kind} `{id}` not found"))
        }
        StoreError::Invalid(errors) => Refusal {
            status: StatusCode::BAD_REQUEST,
            descriptions: open311_errors(&errors),
        },
        StoreError::Conflict(why) => Refusal::bad(why),
        other => {
            tracing::error!(error = %other, "Open311 call failed");
            Refusal::internal()
        }
    }
}

/// Names validation errors as an Open311 client knows the arguments.
fn open311_errors(errors: &ValidationErrors) -> Vec<String> {
    errors
        .0
        .iter()
        .map(|e| {
            let field = if let Some(code) = e.field.strip_prefix("fields.") {
                format!("attribute[{code}]")
            } else {
                match e.field.as_str() {
                    "caseType" => "service_code".into(),
                    "location" => "lat/long, address_string or address_id".into(),
                    "location.lat" => "lat".into(),
                    "location.long" => "long".into(),
                    "location.uprn" => "attribute[uprn]".into(),
                    "location.address" => "address_string".into(),
                    "submitter.email" => "email".into(),
                    "submitter.phone" => "phone".into(),
                    "submitter.name" => "first_name/last_name".into(),
                    other => other.to_string(),
                }
            };
            format!("{field}: {}", e.reason)
        })
        .collect()
}

async fn jurisdiction(state: &Open311State, call: &Call) -> Result<String, Refusal> {
    let all = catalogue::jurisdictions(&state.store)
        .await
        .map_err(store_refusal)?;
    match call.params.get("jurisdiction_id") {
        Some(j) if all.iter().any(|x| x.id == j) => Ok(j.to_string()),
        Some(j) => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            format!("jurisdiction_id `{j}` is not served here"),
        )),
        None if all.len() == 1 => Ok(all[0].id.clone()),
        None if all.is_empty() => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "no jurisdiction is configured",
        )),
        None => Err(Refusal::bad(
            "jurisdiction_id: is required, as this server serves more than one",
        )),
    }
}

/// The actor an Open311 client's writes are recorded under.
pub(super) fn client_actor(call: &Call, client: &str) -> Actor {
    Actor {
        subject: format!("open311:{client}"),
        agency: None,
        roles: vec!["open311_client".into()],
        request_id: Some(call.request_id.clone()),
        client_addr: call.client_addr.clone(),
    }
}

/// The case of `jurisdiction` whose Open311 id (`service_request_id`, Junction's reference)
/// is `reference`. Internal ids are not accepted here.
pub(super) async fn case_by_reference(
    state: &Open311State,
    jurisdiction: &str,
    reference: &str,
) -> Result<Option<Case>, Refusal> {
    Ok(cases::get(&state.store, reference)
        .await
        .map_err(store_refusal)?
        .filter(|c| c.jurisdiction_id == jurisdiction && c.reference == reference))
}

/// Checks the call's api_key; records the client on the call.
pub(super) async fn require_key(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<String, Refusal> {
    let Some(key) = call.params.get("api_key") else {
        return Err(Refusal::new(StatusCode::FORBIDDEN, "api_key: is required"));
    };
    match api_keys::verify(&state.store, key, jurisdiction)
        .await
        .map_err(store_refusal)?
    {
        Some(k) => {
            call.client = Some(k.name.clone());
            Ok(k.name)
        }
        None => Err(Refusal::new(
            StatusCode::FORBIDDEN,
            "api_key: is not valid for this jurisdiction",
        )),
    }
}

/// A W3C date-time in UTC without fractional seconds.
pub fn w3c(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

pub(super) fn parse_time(call: &Call, name: &str) -> Result<Option<DateTime<Utc>>, Refusal> {
    call.params
        .get(name)
        .map(|s| {
            DateTime::parse_from_rfc3339(s)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    Refusal::bad(format!(
                        "{name}: `{s}` is not a W3C date-time with a zone, e.g. 2026-01-31T09:30:00Z"
                    ))
                })
        })
        .transpose()
}

fn discovery(call: &Call) -> Response {
    let endpoint = Node::Object(vec![
        (
            "specification",
            Node::text("http://wiki.open311.org/GeoReport_v2"),
        ),
        ("url", Node::text("/open311/v2")),
        ("changeset", Node::text("2026-11-21 00:00")),
        ("type", Node::text("production")),
        (
            "formats",
            Node::list(
                "format",
                vec![Node::text("text/xml"), Node::text("application/json")],
            ),
        ),
    ]);
    let tree = Node::Object(vec![
        ("changeset", Node::text("2026-11-21 00:00")),
        (
            "contact",
            Node::text("Ask the council's integration team for assistance and an api_key."),
        ),
        (
            "key_service",
            Node::text("api_keys are issued with `junction api-key create`."),
        ),
        ("endpoints", Node::list("endpoint", vec![endpoint])),
    ]);
    render(call.format, StatusCode::OK, "discovery", &tree)
}

async fn services(
    state: &Open311State,
    call: &Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let types = catalogue::case_types(&state.store, Some(jurisdiction))
        .await
        .map_err(store_refusal)?;
    let items = types
        .iter()
        .filter(|t| t.active)
        .map(|t| {
            Node::Object(vec![
                ("service_code", Node::text(&t.code)),
                ("service_name", Node::text(&t.name)),
                ("description", Node::text(&t.description)),
                ("metadata", Node::Bool(true)),
                ("type", Node::text("realtime")),
                ("keywords", Node::text(t.keywords.join(","))),
                ("group", Node::opt(t.group.clone())),
            ])
        })
        .collect();
    Ok(render(
        call.format,
        StatusCode::OK,
        "services",
        &Node::list("service", items),
    ))
}

async fn load_type(
    state: &Open311State,
    jurisdiction: &str,
    code: &str,
) -> Result<CaseType, Refusal> {
    catalogue::case_type(&state.store, jurisdiction, code)
        .await
        .map_err(store_refusal)?
        .filter(|t| t.active)
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("service_code `{code}` is not a service of `{jurisdiction}`"),
            )
        })
}

async fn service_definition(
    state: &Open311State,
    call: &Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let code = call.id.clone().unwrap_or_default();
    let t = load_type(state, jurisdiction, &code).await?;
    let mut fields = t.fields.clone();
    fields.sort_by_key(|f| f.order);
    let mut attributes: Vec<Node> = fields
        .iter()
        .map(|f| {
            let values = f
                .values
                .iter()
                .map(|v| {
                    Node::Object(vec![
                        ("key", Node::text(&v.key)),
                        ("name", Node::text(&v.name)),
                    ])
                })
                .collect();
            let mut attr = vec![
                ("variable", Node::Bool(true)),
                ("code", Node::text(&f.code)),
                ("datatype", Node::text(f.datatype.as_str())),
                ("required", Node::Bool(f.required)),
                (
                    "datatype_description",
                    Node::text(f.datatype_description.clone().unwrap_or_default()),
                ),
                ("order", Node::Integer(i64::from(f.order))),
                ("description", Node::text(&f.description)),
            ];
            if f.datatype.is_list() {
                attr.push(("values", Node::list("value", values)));
            }
            Node::Object(attr)
        })
        .collect();
    // Asks FixMyStreet (and front-ends like it) to send their own id for the case, which
    // Junction returns with every update so the front-end can match it.
    let next_order = fields.iter().map(|f| f.order).max().unwrap_or(0) + 1;
    for (i, code) in FRONT_END_ID_ATTRIBUTES.iter().enumerate() {
        attributes.push(Node::Object(vec![
            ("variable", Node::Bool(false)),
            ("code", Node::text(*code)),
            ("datatype", Node::text("string")),
            ("required", Node::Bool(false)),
            ("datatype_description", Node::text("")),
            ("order", Node::Integer(i64::from(next_order) + i as i64)),
            (
                "description",
                Node::text("The front-end's own id for this report"),
            ),
            ("automated", Node::text("server_set")),
        ]));
    }
    let tree = Node::Object(vec![
        ("service_code", Node::text(&t.code)),
        ("attributes", Node::list("attribute", attributes)),
    ]);
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_definition",
        &tree,
    ))
}

fn parse_coordinate(call: &Call, name: &str) -> Result<Option<f64>, Refusal> {
    call.params
        .get(name)
        .map(|s| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .ok_or_else(|| Refusal::bad(format!("{name}: `{s}` is not a number")))
        })
        .transpose()
}

async fn post_request(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let client = require_key(state, call, jurisdiction).await?;
    let Some(code) = call.params.get("service_code").map(str::to_string) else {
        return Err(Refusal::bad("service_code: is required"));
    };
    let case_type = catalogue::case_type(&state.store, jurisdiction, &code)
        .await
        .map_err(store_refusal)?
        .ok_or_else(|| {
            Refusal::bad(format!(
                "service_code: `{code}` is not a service of `{jurisdiction}`"
            ))
        })?;
    let mut problems = Vec::new();
    let lat = parse_coordinate(call, "lat").unwrap_or_else(|r| {
        problems.extend(r.descriptions);
        None
    });
    let long = parse_coordinate(call, "long").unwrap_or_else(|r| {
        problems.extend(r.descriptions);
        None
    });
    let mut location = Location {
        lat,
        long,
        uprn: None,
        address: call.params.get("address_string").map(str::to_string),
    };
    if let Some(id) = call.params.get("address_id") {
        if id.len() <= 12 && id.bytes().all(|b| b.is_ascii_digit()) {
            location.uprn = Some(id.to_string());
        } else if location.address.is_none() {
            location.address = Some(id.to_string());
        }
    }
    let mut fields: BTreeMap<String, Value> = BTreeMap::new();
    let mut source_ref = None;
    let mut ignored = Vec::new();
    let mut first_name = call.params.get("first_name").map(str::to_string);
    let mut last_name = call.params.get("last_name").map(str::to_string);
    for (attr, values) in call.params.attributes() {
        if FRONT_END_ID_ATTRIBUTES.contains(&attr.as_str()) {
            source_ref = values.first().cloned();
            continue;
        }
        match case_type.field(&attr) {
            Some(f) if f.datatype == junction_domain::Datatype::Multivaluelist => {
                fields.insert(
                    attr,
                    Value::Array(values.into_iter().map(Value::String).collect()),
                );
            }
            Some(_) => {
                if let Some(v) = values.into_iter().next() {
                    fields.insert(attr, Value::String(v));
                }
            }
            None => match attr.as_str() {
                // What FixMyStreet sends beside the definition's own attributes.
                "uprn" if location.uprn.is_none() => location.uprn = values.into_iter().next(),
                "closest_address" if location.address.is_none() => {
                    location.address = values.into_iter().next()
                }
                "first_name" if first_name.is_none() => first_name = values.into_iter().next(),
                "last_name" if last_name.is_none() => last_name = values.into_iter().next(),
                _ => ignored.push(attr),
            },
        }
    }
    if !ignored.is_empty() {
        tracing::info!(
            request_id = call.request_id,
            service_code = code,
            ignored = ?ignored,
            "attributes the service does not define were ignored"
        );
    }
    if !problems.is_empty() {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            descriptions: problems,
        });
    }
    let name = [first_name, last_name]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ");
    let new = NewCase {
        case_type_code: code.clone(),
        description: call.params.get("description").unwrap_or("").to_string(),
        location,
        submitter: Submitter {
            name: (!name.is_empty()).then_some(name),
            email: call.params.get("email").map(str::to_string),
            phone: call.params.get("phone").map(str::to_string),
        },
        fields,
        source_ref,
    };
    let actor = client_actor(call, &client);
    // Uploaded photos are kept with the case, in the same transaction.
    let case = state
        .intake
        .create_case_with_files(&actor, jurisdiction, new, call.params.files())
        .await
        .map_err(store_refusal)?;
    let tree = Node::list(
        "request",
        vec![Node::Object(vec![
            ("service_request_id", Node::text(&case.reference)),
            ("service_notice", Node::Null),
            ("account_id", Node::opt(call.params.get("account_id"))),
        ])],
    );
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_requests",
        &tree,
    ))
}

/// The back-end reference of the case's main delivery, once it has one.
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

/// A case as Open311 shows it to anyone: no submitter details, no field values.
fn request_node(case: &Case, service_name: &str, external: Option<String>) -> Node {
    let route = case.route.as_ref();
    Node::Object(vec![
        ("service_request_id", Node::text(&case.reference)),
        (
            "status",
            Node::text(if case.status.is_closed() {
                "closed"
            } else {
                "open"
            }),
        ),
        ("extended_status", Node::text(case.status.as_str())),
        ("status_notes", Node::Null),
        ("service_name", Node::text(service_name)),
        ("service_code", Node::text(&case.case_type_code)),
        ("description", Node::text(&case.description)),
        (
            "agency_responsible",
            Node::text(route.map_or(case.agency_id.as_str(), |r| r.agency.as_str())),
        ),
        ("service_notice", Node::Null),
        ("requested_datetime", Node::text(w3c(case.created_at))),
        ("updated_datetime", Node::text(w3c(case.updated_at))),
        ("expected_datetime", Node::Null),
        ("address", Node::opt(case.location.address.clone())),
        ("address_id", Node::opt(case.location.uprn.clone())),
        ("zipcode", Node::Null),
        ("lat", case.location.lat.map_or(Node::Null, Node::Number)),
        ("long", case.location.long.map_or(Node::Null, Node::Number)),
        ("media_url", Node::Null),
        // Where the case went: the council system's own reference (a mySociety-style extra).
        ("external_id", Node::opt(external)),
    ])
}

async fn service_names(
    state: &Open311State,
    jurisdiction: &str,
) -> Result<BTreeMap<String, String>, Refusal> {
    Ok(catalogue::case_types(&state.store, Some(jurisdiction))
        .await
        .map_err(store_refusal)?
        .into_iter()
        .map(|t| (t.code, t.name))
        .collect())
}

async fn get_requests(
    state: &Open311State,
    call: &Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let names = service_names(state, jurisdiction).await?;
    let mut cases_out: Vec<Case> = Vec::new();
    if let Some(ids) = call.params.get("service_request_id") {
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
        for id in ids {
            if let Some(c) = case_by_reference(state, jurisdiction, id).await? {
                cases_out.push(c);
            }
        }
    } else {
        let end = parse_time(call, "end_date")?.unwrap_or_else(Utc::now);
        let start =
            parse_time(call, "start_date")?.unwrap_or(end - Duration::days(MAX_WINDOW_DAYS));
        if start > end {
            return Err(Refusal::bad("start_date: is after end_date"));
        }
        if end - start > Duration::days(MAX_WINDOW_DAYS) {
            return Err(Refusal::bad(format!(
                "start_date: the window may span at most {MAX_WINDOW_DAYS} days"
            )));
        }
        let statuses: Vec<&str> = call
            .params
            .get("status")
            .map(|s| s.split(',').map(str::trim).collect())
            .unwrap_or_default();
        for s in &statuses {
            if !matches!(*s, "open" | "closed") && CaseStatus::parse(s).is_none() {
                return Err(Refusal::bad(format!(
                    "status: `{s}` is not open, closed or an extended status"
                )));
            }
        }
        let page_size = match call.params.get("page_size") {
            None => 100,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_PAGE_SIZE).contains(n))
                .ok_or_else(|| {
                    Refusal::bad(format!(
                        "page_size: must be a number from 1 to {MAX_PAGE_SIZE}"
                    ))
                })?,
        };
        let page = match call.params.get("page") {
            None => 1,
            Some(s) => s
                .parse::<u64>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| Refusal::bad("page: must be a number from 1"))?,
        };
        let filter = CaseFilter {
            jurisdiction_id: Some(jurisdiction.to_string()),
            case_type: call.params.get("service_code").map(str::to_string),
            created_from: Some(start),
            created_to: Some(end + Duration::seconds(1)),
            ..CaseFilter::default()
        };
        // Walk the pages up to the one asked for; cases are listed newest first.
        let mut after: Option<String> = None;
        let mut current = 1;
        loop {
            let batch = cases::list(&state.store, &filter, page_size, after.as_deref())
                .await
                .map_err(store_refusal)?;
            if current == page || batch.cases.is_empty() {
                cases_out = batch.cases;
                break;
            }
            if !batch.has_next {
                break;
            }
            after = batch.cases.last().map(|c| c.id.clone());
            current += 1;
        }
        if !statuses.is_empty() {
            cases_out.retain(|c| {
                let basic = if c.status.is_closed() {
                    "closed"
                } else {
                    "open"
                };
                statuses
                    .iter()
                    .any(|s| *s == basic || *s == c.status.as_str())
            });
        }
    }
    let mut items = Vec::with_capacity(cases_out.len());
    for c in &cases_out {
        let external = external_id(state, c).await?;
        items.push(request_node(
            c,
            names.get(&c.case_type_code).map_or("", String::as_str),
            external,
        ));
    }
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_requests",
        &Node::list("request", items),
    ))
}

async fn get_request(
    state: &Open311State,
    call: &Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let id = call.id.clone().unwrap_or_default();
    let case = case_by_reference(state, jurisdiction, &id)
        .await?
        .ok_or_else(|| {
            Refusal::new(
                StatusCode::NOT_FOUND,
                format!("service_request_id `{id}` not found"),
            )
        })?;
    let names = service_names(state, jurisdiction).await?;
    let external = external_id(state, &case).await?;
    let node = request_node(
        &case,
        names.get(&case.case_type_code).map_or("", String::as_str),
        external,
    );
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_requests",
        &Node::list("request", vec![node]),
    ))
}

/// Junction answers `POST requests` with the id at once, so a token is only ever the case's
/// internal id, resolved here for clients that ask.
async fn get_token(
    state: &Open311State,
    call: &Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let token = call.id.clone().unwrap_or_default();
    let case = cases::get(&state.store, &token)
        .await
        .map_err(store_refusal)?
        .filter(|c| c.jurisdiction_id == jurisdiction && c.id == token)
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("token `{token}` not found")))?;
    let tree = Node::list(
        "service_request",
        vec![Node::Object(vec![
            ("service_request_id", Node::text(&case.reference)),
            ("token", Node::text(&case.id)),
        ])],
    );
    Ok(render(
        call.format,
        StatusCode::OK,
        "service_requests",
        &tree,
    ))
}
