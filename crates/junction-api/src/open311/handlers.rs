//! The Open311 endpoints: which handler answers which call, and the service list and
//! definitions, discovery and tokens.

use axum::http::{Method, StatusCode};
use axum::response::Response;
use junction_domain::CaseType;
use junction_store::cases;
use junction_store::catalogue;

use super::common::{FRONT_END_ID_ATTRIBUTES, store_refusal};
use super::format::{Node, render};
use super::{Call, Open311State, Refusal, reads, reports, updates};

pub(super) async fn dispatch(state: &Open311State, call: &mut Call) -> Result<Response, Refusal> {
    let jurisdiction = jurisdiction(state, call).await?;
    match (&call.method, call.endpoint.as_str(), call.id.is_some()) {
        (&Method::GET, "discovery", false) => Ok(discovery(call)),
        (&Method::GET, "services", false) => services(state, call, &jurisdiction).await,
        (&Method::GET, "services", true) => service_definition(state, call, &jurisdiction).await,
        (&Method::POST, "requests", false) => {
            reports::post_request(state, call, &jurisdiction).await
        }
        (&Method::GET, "requests", false) => reads::get_requests(state, call, &jurisdiction).await,
        (&Method::GET, "requests", true) => reads::get_request(state, call, &jurisdiction).await,
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
        .filter(|t| t.active && t.published)
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
        .filter(|t| t.active && t.published)
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

/// The back-end reference of the case's main delivery, once it has one.
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
    // `<service_requests><request>`, as the spec's sample and FixMyStreet's Open311.pm read it.
    let tree = Node::list(
        "request",
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
