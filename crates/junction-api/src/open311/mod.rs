//! Junction as an Open311 GeoReport v2 server, with the mySociety extensions, at
//! `/open311/v2/`.
//!
//! Every endpoint answers in XML or JSON by its path suffix, with the spec's element names;
//! ids are strings and never `"0"`; times are W3C date-times in UTC without fractions; an empty
//! argument counts as absent; `jurisdiction_id` is accepted everywhere and needed only when
//! there is more than one. Writes need an `api_key`, checked against the stored hashes.
//! Errors are HTTP 400, 403 or 404 with the spec's `errors` body. Every call, accepted or
//! refused, leaves one audit record, durable before the response is sent.

mod backend_updates;
mod common;
mod format;
mod handlers;
mod params;
mod reads;
mod reports;
mod updates;
mod uploads;

pub use uploads::UploadLimits;

use std::time::Instant;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::any;
use junction_domain::audit::sha256_hex;
use junction_store::Store;
use junction_store::audit::AuditWriter;
use tracing::Instrument;

pub use format::Format;
use format::errors;
use params::{BodyError, Params};

use crate::intake::Intake;
use crate::{ErrorCode, RequestAudit};

/// What the Open311 endpoints need.
#[derive(Clone)]
pub struct Open311State {
    pub store: Store,
    /// How core case attributes are classified: Open311 shows a reader only what its lens
    /// allows.
    pub core: std::sync::Arc<junction_domain::CoreClassification>,
    pub audit: AuditWriter,
    pub intake: Intake,
    /// How much a request may upload, and what happens to a file over the limit.
    pub uploads: UploadLimits,
    /// Clients (api key names) told only `open` or `closed` in `<status>`, as strict
    /// GeoReport v2 has it.
    pub strict_clients: std::sync::Arc<std::collections::BTreeSet<String>>,
    /// What each connector's back-end means by its statuses, for the updates it pushes.
    pub inbound: std::sync::Arc<std::collections::BTreeMap<String, junction_domain::StatusMap>>,
}

/// The `/open311/v2/` routes.
pub fn router(state: Open311State) -> Router {
    // The upload limits are enforced as the body is read; axum's own 2 MB default must not
    // stand in for them.
    let body_limit = usize::try_from(state.uploads.request_bytes).unwrap_or(usize::MAX);
    Router::new()
        .route("/open311/v2/{file}", any(top))
        .route("/open311/v2/{dir}/{file}", any(nested))
        .layer(axum::extract::DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// A failure the caller sees, in the spec's error format.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub status: StatusCode,
    pub descriptions: Vec<String>,
}

impl Refusal {
    pub fn new(status: StatusCode, description: impl Into<String>) -> Refusal {
        Refusal {
            status,
            descriptions: vec![description.into()],
        }
    }

    pub fn bad(description: impl Into<String>) -> Refusal {
        Refusal::new(StatusCode::BAD_REQUEST, description)
    }

    pub fn internal() -> Refusal {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
    }
}

/// The call being served: what the handlers see.
pub(crate) struct Call {
    pub method: Method,
    /// `discovery`, `services`, `requests`, `tokens`, `servicerequestupdates`.
    pub endpoint: String,
    /// The `{id}` of `services/{id}`, `requests/{id}`, `tokens/{id}`.
    pub id: Option<String>,
    pub format: Format,
    pub params: Params,
    pub request_id: String,
    pub client_addr: Option<String>,
    /// The api_key's client, once checked.
    pub client: Option<String>,
    /// The `Idempotency-Key` header, for clients that send no id of their own.
    pub idempotency_key: Option<String>,
}

async fn top(
    State(state): State<Open311State>,
    Path(file): Path<String>,
    request: Request,
) -> Response {
    serve(state, None, file, request).await
}

async fn nested(
    State(state): State<Open311State>,
    Path((dir, file)): Path<(String, String)>,
    request: Request,
) -> Response {
    serve(state, Some(dir), file, request).await
}

/// Runs the call in its own task, so a caller that hangs up cannot stop it half-way or skip
/// its audit record.
async fn serve(
    state: Open311State,
    dir: Option<String>,
    file: String,
    request: Request,
) -> Response {
    let task = tokio::spawn(serve_audited(state, dir, file, request).in_current_span());
    match task.await {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "Open311 request task failed");
            errors(
                Format::Xml,
                StatusCode::INTERNAL_SERVER_ERROR,
                &["internal error".into()],
            )
        }
    }
}

async fn serve_audited(
    state: Open311State,
    dir: Option<String>,
    file: String,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (request_id, client_addr) = crate::layer::request_meta(&request);
    let method = request.method().clone();
    let (endpoint, id, format) = match (&dir, Format::split(&file)) {
        (None, Some((stem, f))) => (stem.to_string(), None, Some(f)),
        (Some(d), Some((stem, f))) => (d.clone(), Some(stem.to_string()), Some(f)),
        (_, None) => (dir.clone().unwrap_or_else(|| file.clone()), None, None),
    };
    // Labels, operation names and audit records take the method and endpoint from closed
    // sets: a caller cannot grow the metric set or fill the log with strings of its own.
    let method_label = method_label(&method);
    let endpoint_label = endpoint_label(&endpoint);
    let operation_name = format!(
        "open311 {method_label} {endpoint_label}{}",
        if id.is_some() { "/{id}" } else { "" }
    );
    let mut call = Call {
        method: method.clone(),
        endpoint,
        id,
        format: format.unwrap_or(Format::Xml),
        params: Params::default(),
        request_id: request_id.clone(),
        client_addr: client_addr.clone(),
        client: None,
        idempotency_key: request
            .headers()
            .get("idempotency-key")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
    };
    let result = match format {
        _ if method_label == "other" => Err(Refusal::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and POST are served here",
        )),
        None => Err(Refusal::new(
            StatusCode::NOT_FOUND,
            "unknown format: end the path with .xml or .json",
        )),
        Some(_) => read_and_dispatch(&state, &mut call, request).await,
    };
    let (response, code) = match result {
        Ok(response) => (response, None),
        Err(refusal) => (
            errors(call.format, refusal.status, &refusal.descriptions),
            Some(refusal_code(refusal.status)),
        ),
    };
    let outcome = code.map_or("ok", ErrorCode::outcome);
    let entry = RequestAudit::by_client(call.client.as_deref())
        .request(&request_id, client_addr)
        .operation("open311", Some(operation_name.clone()))
        .variables(Some(sha256_hex(call.params.digest_input().as_bytes())))
        .ended(code, started.elapsed());
    if let Err(e) = state.audit.record(entry).await {
        tracing::error!(request_id, error = %e, "audit record not written; refusing the response");
        return errors(
            call.format,
            StatusCode::INTERNAL_SERVER_ERROR,
            &["internal error".into()],
        );
    }
    metrics::counter!(
        "junction_open311_requests_total",
        "endpoint" => endpoint_label,
        "method" => method_label,
        "outcome" => outcome
    )
    .increment(1);
    tracing::info!(
        request_id,
        operation = operation_name,
        outcome,
        status = response.status().as_u16(),
        "open311 call"
    );
    response
}

/// Reads the call's parameters (the form or multipart body of a POST, the query string of a
/// GET) and hands the call to its endpoint.
async fn read_and_dispatch(
    state: &Open311State,
    call: &mut Call,
    request: Request,
) -> Result<Response, Refusal> {
    let params = if call.method == Method::POST {
        Params::from_request(request, state.uploads).await
    } else {
        Params::from_query(request.uri().query())
    };
    match params {
        Ok(p) => {
            call.params = p;
            handlers::dispatch(state, call).await
        }
        Err(BodyError::TooLarge(limit)) => Err(Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {limit} bytes, the limit per request \
                 (max_upload_request_bytes)"
            ),
        )),
        Err(BodyError::FileRefused(why)) => Err(Refusal::new(StatusCode::PAYLOAD_TOO_LARGE, why)),
        Err(BodyError::Malformed(why)) => Err(Refusal::bad(why)),
    }
}

/// The error code an Open311 refusal is recorded under, from its HTTP status.
fn refusal_code(status: StatusCode) -> ErrorCode {
    match status.as_u16() {
        400 => ErrorCode::BadUserInput,
        401 | 403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        405 => ErrorCode::BadRequest,
        413 => ErrorCode::LimitExceeded,
        409 => ErrorCode::Conflict,
        _ => ErrorCode::Internal,
    }
}

/// The method as a label: `GET`, `POST`, or `other` (which is refused).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        _ => "other",
    }
}

/// The endpoint as a label: one of the spec's, or `other`.
fn endpoint_label(endpoint: &str) -> &'static str {
    match endpoint {
        "discovery" => "discovery",
        "services" => "services",
        "requests" => "requests",
        "tokens" => "tokens",
        "servicerequestupdates" => "servicerequestupdates",
        _ => "other",
    }
}
