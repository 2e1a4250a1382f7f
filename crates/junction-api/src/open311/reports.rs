//! `POST requests`: a report taken in as FixMyStreet and other front-ends send it, its
//! arguments read into a new case, then handed to intake. A report sent again under the
//! front-end's own id (or an `Idempotency-Key`) is answered with the case already made.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use junction_domain::{CaseType, Location, NewCase, Submitter};
use junction_store::cases::Arrival;
use junction_store::catalogue;
use serde_json::Value;

use super::common::{FRONT_END_ID_ATTRIBUTES, client_actor, require_key, store_refusal};
use super::format::{Node, render};
use super::{Call, Open311State, Refusal};

/// What the `attribute[…]` arguments of a report held.
#[derive(Default)]
struct Attributes {
    fields: BTreeMap<String, Value>,
    /// The front-end's own id for the case.
    source_ref: Option<String>,
    first_name: Option<String>,
    last_name: Option<String>,
    /// Attributes the service does not define, logged and left.
    ignored: Vec<String>,
}

pub(super) async fn post_request(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<Response, Refusal> {
    let client = require_key(state, call, jurisdiction).await?;
    let Some(code) = call.params.get("service_code").map(str::to_string) else {
        return Err(Refusal::bad("service_code: is required"));
    };
    // A type that is not published is not a service here, for writing as for reading.
    let case_type = catalogue::case_type(&state.store, jurisdiction, &code)
        .await
        .map_err(store_refusal)?
        .filter(|t| t.published)
        .ok_or_else(|| {
            Refusal::bad(format!(
                "service_code: `{code}` is not a service of `{jurisdiction}`"
            ))
        })?;
    let mut location = location(call)?;
    let attributes = attributes(call, &case_type, &mut location);
    if !attributes.ignored.is_empty() {
        tracing::info!(
            request_id = call.request_id,
            service_code = code,
            ignored = ?attributes.ignored,
            "attributes the service does not define were ignored"
        );
    }
    let first_name = call
        .params
        .get("first_name")
        .map(str::to_string)
        .or(attributes.first_name);
    let last_name = call
        .params
        .get("last_name")
        .map(str::to_string)
        .or(attributes.last_name);
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
        fields: attributes.fields,
        source_ref: attributes.source_ref,
        // FixMyStreet sends a photo's address rather than the photo (repeated with
        // `multi_photos`); the case keeps them all and passes them on.
        media_urls: call.params.media_urls(),
    };
    take_in(state, call, &client, jurisdiction, new).await
}

/// Hands `new` to intake with its files and the client's idempotency key, and answers with
/// its reference.
async fn take_in(
    state: &Open311State,
    call: &mut Call,
    client: &str,
    jurisdiction: &str,
    new: NewCase,
) -> Result<Response, Refusal> {
    let actor = client_actor(call, client);
    // A report sent again (FixMyStreet resends when it lost the answer) is recognised by the
    // front-end's own id for it, or an `Idempotency-Key`, per client: it is answered with the
    // case already made, and nothing is created or sent. Uploaded photos are kept with the
    // case, in the same transaction; any set aside as over a limit are recorded on it.
    let key = new
        .source_ref
        .clone()
        .or_else(|| call.idempotency_key.clone());
    if key.as_deref().is_some_and(|k| k.chars().count() > 200) {
        return Err(Refusal::bad(
            "Idempotency-Key (or the front-end's id): at most 200 characters",
        ));
    }
    let arrival = Arrival {
        files: call.params.files(),
        refused: call.params.refused_files(),
        idempotency_key: key.as_deref(),
    };
    let case = state
        .intake
        .create(&actor, jurisdiction, new, arrival)
        .await
        .map_err(store_refusal)?
        .case;
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

/// Where the report is: `lat`/`long`, `address_string`, and `address_id` (a UPRN when it is
/// one, an address otherwise). Every bad coordinate is named.
fn location(call: &Call) -> Result<Location, Refusal> {
    let mut problems = Vec::new();
    let mut coordinate = |name: &str| {
        parse_coordinate(call, name).unwrap_or_else(|r| {
            problems.extend(r.descriptions);
            None
        })
    };
    let (lat, long) = (coordinate("lat"), coordinate("long"));
    if !problems.is_empty() {
        return Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            descriptions: problems,
        });
    }
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
    Ok(location)
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

/// The report's `attribute[…]` arguments: the service's own fields, the front-end's id for
/// the case, and what FixMyStreet sends beside the definition (a UPRN, the closest address,
/// names), which fill in `location` where it is empty.
fn attributes(call: &Call, case_type: &CaseType, location: &mut Location) -> Attributes {
    let mut out = Attributes::default();
    for (attr, values) in call.params.attributes() {
        if FRONT_END_ID_ATTRIBUTES.contains(&attr.as_str()) {
            out.source_ref = values.first().cloned();
            continue;
        }
        match case_type.field(&attr) {
            Some(f) if f.datatype == junction_domain::Datatype::Multivaluelist => {
                out.fields.insert(
                    attr,
                    Value::Array(values.into_iter().map(Value::String).collect()),
                );
            }
            Some(_) => {
                if let Some(v) = values.into_iter().next() {
                    out.fields.insert(attr, Value::String(v));
                }
            }
            None => match attr.as_str() {
                "uprn" if location.uprn.is_none() => location.uprn = values.into_iter().next(),
                "closest_address" if location.address.is_none() => {
                    location.address = values.into_iter().next()
                }
                "first_name" if out.first_name.is_none() => {
                    out.first_name = values.into_iter().next()
                }
                "last_name" if out.last_name.is_none() => out.last_name = values.into_iter().next(),
                _ => out.ignored.push(attr),
            },
        }
    }
    out
}
