//! What every Open311 endpoint shares: the bounds of a read, the api key check, the client's
//! actor, finding a case by its reference, times in W3C form, and refusals in the spec's
//! terms. Endpoint files use this; none uses another endpoint file.

use axum::http::StatusCode;
use chrono::{DateTime, SecondsFormat, Utc};
use junction_domain::{Actor, Case, ValidationErrors};
use junction_store::{StoreError, api_keys, cases};

use super::{Call, Open311State, Refusal};

/// Attributes a front-end may send that carry its own id for the case rather than a field.
pub(super) const FRONT_END_ID_ATTRIBUTES: [&str; 1] = ["fixmystreet_id"];

/// Longest window `GET requests` and `GET servicerequestupdates` serve.
pub(super) const MAX_WINDOW_DAYS: i64 = 90;

/// Most requests or updates one call returns.
pub(super) const MAX_PAGE_SIZE: u64 = 1_000;

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
                    "mediaUrls" => "media_url".into(),
                    other => other.to_string(),
                }
            };
            format!("{field}: {}", e.reason)
        })
        .collect()
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
/// The front-end key the call carries: its client's name. A back-end's key is refused here: it
/// may only push its updates ([`verified_key`]).
pub(super) async fn require_key(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<String, Refusal> {
    let key = verified_key(state, call, jurisdiction).await?;
    if let Some(connector) = &key.connector_id {
        return Err(Refusal::new(
            StatusCode::FORBIDDEN,
            format!(
                "api_key: belongs to the back-end of connector `{connector}`; it may only post that back-end's updates to servicerequestupdates"
            ),
        ));
    }
    Ok(key.name)
}

/// The live key the call carries, front-end's or back-end's.
pub(super) async fn verified_key(
    state: &Open311State,
    call: &mut Call,
    jurisdiction: &str,
) -> Result<api_keys::ApiKey, Refusal> {
    let Some(key) = call.params.get("api_key") else {
        return Err(Refusal::new(StatusCode::FORBIDDEN, "api_key: is required"));
    };
    match api_keys::verify(&state.store, key, jurisdiction)
        .await
        .map_err(store_refusal)?
    {
        Some(k) => {
            call.client = Some(k.name.clone());
            Ok(k)
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
