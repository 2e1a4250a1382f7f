//! The `/graphql` endpoint: authenticate, execute, audit, respond.
//!
//! Every request, whether it runs, fails, or is refused before running (no token, bad token,
//! body too large, malformed JSON, a document over the depth or complexity limit), writes
//! exactly one audit record, and the response is sent only once that record is durable.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_graphql::http::GraphiQLSource;
use axum::Router;
use axum::body::Body;
use axum::extract::ws::{WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use junction_domain::Principal;
use junction_domain::audit::sha256_hex;
use junction_store::Store;
use junction_store::audit::AuditWriter;
use serde_json::json;
use tracing::Instrument;

use crate::graphql::access::DisclosureLog;
use crate::graphql::{JunctionSchema, Limits};

/// The header a partner states its purpose in.
pub const PURPOSE_HEADER: &str = "junction-purpose";
use crate::{Authenticator, ErrorCode, RequestAudit, RequestCtx};

/// What the GraphQL endpoint needs. The routes share one, behind an [`Arc`]: a request costs
/// one reference count, not one per field.
pub struct ApiState {
    pub store: Store,
    pub audit: AuditWriter,
    pub auth: Arc<Authenticator>,
    pub schema: JunctionSchema,
    /// The same schema for documents that have already passed every validation rule.
    pub prevalidated: JunctionSchema,
    pub limits: Limits,
    /// Subscriptions that share one execution (see [`crate::cohort`]).
    pub cohorts: crate::cohort::Cohorts,
    /// Purposes and core attribute classifications, for paths outside GraphQL (exports).
    pub sharing: crate::SharingPolicy,
    /// Becomes true when the server starts shutting down: WebSocket connections close (1001).
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// Documents already parsed.
    pub documents: crate::graphql::DocumentCache,
    /// Request counts and latencies by operation, for `/metrics`.
    pub metrics: crate::request_metrics::RequestMetrics,
}

/// The `/graphql` routes.
pub fn router(state: ApiState) -> Router {
    let state = Arc::new(state);
    Router::new()
        .route(
            "/graphql",
            get(graphql_get).post(graphql).fallback(graphql_other),
        )
        .route("/export/cases.csv", get(crate::export::cases_csv))
        .route("/attachments/{id}", get(crate::attachments::download))
        .with_state(state)
}

/// `GET /graphql`: a WebSocket upgrade (`graphql-transport-ws`), or GraphiQL in development.
async fn graphql_get(
    State(state): State<Arc<ApiState>>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (request_id, client_addr) = request_meta(&request);
    let refused = match upgrade {
        Ok(upgrade) => {
            let offered = request
                .headers()
                .get(header::SEC_WEBSOCKET_PROTOCOL)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.split(',').any(|p| p.trim() == crate::ws::SUBPROTOCOL));
            if offered {
                return crate::ws::upgrade(state, upgrade, request_id, client_addr);
            }
            error_response(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "WebSocket clients must offer the graphql-transport-ws subprotocol",
            )
        }
        Err(_) if state.limits.development => {
            return Html(
                GraphiQLSource::build()
                    .endpoint("/graphql")
                    .subscription_endpoint("/graphql")
                    .finish(),
            )
            .into_response();
        }
        Err(_) => error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            ErrorCode::BadRequest,
            "GraphiQL is available only in development mode; POST queries to /graphql",
        ),
    };
    // Refusals at the GraphQL route are on the record like any other request.
    let op = Operation::new("GET /graphql", "graphql", started);
    let code = Some(ErrorCode::BadRequest);
    audited(&state, None, &request_id, client_addr, op, code, refused).await
}

/// Any method but GET and POST at `/graphql`: 405, audited.
async fn graphql_other(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    let started = Instant::now();
    let (request_id, client_addr) = request_meta(&request);
    let mut refused = error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::BadRequest,
        "POST queries to /graphql, or GET to open a WebSocket",
    );
    refused
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, POST"));
    let op = Operation::new("other /graphql", "graphql", started);
    let code = Some(ErrorCode::BadRequest);
    audited(&state, None, &request_id, client_addr, op, code, refused).await
}

/// Facts about one request, gathered as it is handled and written to the audit log at the end.
struct Outcome {
    principal: Option<Principal>,
    operation_name: Option<String>,
    operation_type: &'static str,
    variables_hash: Option<String>,
    /// The first error's code; none when the request succeeded.
    error_code: Option<ErrorCode>,
}

/// A 401 asking for a bearer token.
pub(crate) fn unauthenticated(message: &str) -> Response {
    let mut response = error_response(
        StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthenticated,
        message,
    );
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Who sent a request outside GraphQL: the principal, the request id and the client address.
pub(crate) type Caller = (Principal, String, Option<String>);

/// The [`Caller`] of a request outside GraphQL. Without a valid token the 401 is returned as
/// the error, already audited.
pub(crate) fn authenticate_audited<'a>(
    state: &'a ApiState,
    request: &Request,
    op: Operation,
) -> impl std::future::Future<Output = Result<Caller, Response>> + Send + 'a {
    // Decided before any await: a request (its body) is not shared across threads.
    let (request_id, client_addr) = request_meta(request);
    let checked = authenticate(&state.auth, request.headers());
    refuse_unless_authenticated(state, checked, request_id, client_addr, op)
}

async fn refuse_unless_authenticated(
    state: &ApiState,
    checked: Result<Principal, String>,
    request_id: String,
    client_addr: Option<String>,
    op: Operation,
) -> Result<Caller, Response> {
    match checked {
        Ok(principal) => Ok((principal, request_id, client_addr)),
        Err(message) => {
            let response = unauthenticated(&message);
            let code = Some(ErrorCode::Unauthenticated);
            Err(audited(state, None, &request_id, client_addr, op, code, response).await)
        }
    }
}

/// A request outside GraphQL, for its audit record.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Operation {
    pub name: &'static str,
    /// `export`, `download`.
    pub kind: &'static str,
    pub started: Instant,
}

impl Operation {
    pub fn new(name: &'static str, kind: &'static str, started: Instant) -> Operation {
        Operation {
            name,
            kind,
            started,
        }
    }
}

/// Writes a non-GraphQL request's one audit record; without it the response does not go out.
pub(crate) async fn audited(
    state: &ApiState,
    principal: Option<Principal>,
    request_id: &str,
    client_addr: Option<String>,
    op: Operation,
    code: Option<ErrorCode>,
    response: Response,
) -> Response {
    let entry = RequestAudit::by(principal.as_ref())
        .request(request_id, client_addr)
        .operation(op.kind, Some(op.name.into()))
        .ended(code, op.started.elapsed());
    if let Err(e) = state.audit.record(entry).await {
        tracing::error!(request_id, error = %e, "audit record not written; refusing the response");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        );
    }
    response
}

/// The request's id (the caller's `x-request-id`, or a new one) and the client's address.
pub(crate) fn request_meta(request: &Request) -> (String, Option<String>) {
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .map(String::from)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let client_addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    (request_id, client_addr)
}

/// Runs each request in its own task: if the caller hangs up, axum drops this handler's
/// future, but the request still finishes and its audit record is still written.
async fn graphql(State(state): State<Arc<ApiState>>, request: Request) -> Response {
    match tokio::spawn(graphql_audited(state, request).in_current_span()).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "GraphQL request task failed");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            )
        }
    }
}

async fn graphql_audited(state: Arc<ApiState>, request: Request) -> Response {
    let started = Instant::now();
    let (request_id, client_addr) = request_meta(&request);
    let (response, mut outcome) = handle(&state, request, &request_id, client_addr.clone()).await;

    let elapsed = started.elapsed();
    let entry = RequestAudit::by(outcome.principal.as_ref())
        .request(&request_id, client_addr)
        .operation(outcome.operation_type, outcome.operation_name.clone())
        .variables(outcome.variables_hash.take())
        .ended(outcome.error_code, elapsed);
    if let Err(e) = state.audit.record(entry).await {
        // Without a durable record the response must not go out.
        tracing::error!(request_id, error = %e, "audit record not written; refusing the response");
        return error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error",
        );
    }
    let operation = outcome
        .operation_name
        .as_deref()
        .map_or("anonymous", metric_label);
    let result = outcome.error_code.map_or("ok", ErrorCode::outcome);
    state.metrics.record(operation, result, elapsed);
    response
}

async fn handle(
    state: &ApiState,
    request: Request,
    request_id: &str,
    client_addr: Option<String>,
) -> (Response, Outcome) {
    let mut outcome = Outcome {
        principal: None,
        operation_name: None,
        operation_type: "unknown",
        variables_hash: None,
        error_code: None,
    };
    let (parts, body) = request.into_parts();

    let principal = match authenticate(&state.auth, &parts.headers) {
        Ok(p) => p,
        Err(message) => {
            outcome.error_code = Some(ErrorCode::Unauthenticated);
            return (unauthenticated(&message), outcome);
        }
    };
    outcome.principal = Some(principal.clone());

    let bytes = match axum::body::to_bytes(Body::new(body), state.limits.max_body_bytes).await {
        Ok(b) => b,
        Err(_) => {
            outcome.error_code = Some(ErrorCode::LimitExceeded);
            let message = format!(
                "request body is larger than the {} bytes allowed",
                state.limits.max_body_bytes
            );
            return (
                error_response(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    ErrorCode::LimitExceeded,
                    &message,
                ),
                outcome,
            );
        }
    };
    let mut gql_request: async_graphql::Request = match parse_body(&bytes) {
        Ok(r) => r,
        Err(message) => {
            outcome.error_code = Some(ErrorCode::BadRequest);
            return (
                error_response(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, &message),
                outcome,
            );
        }
    };
    let prepared = state
        .documents
        .prepare(&mut gql_request, state.limits.max_complexity);
    outcome.operation_name = gql_request.operation_name.clone();
    outcome.variables_hash = Some(variables_hash(&gql_request.variables));

    let ctx = RequestCtx {
        principal,
        request_id: request_id.to_string(),
        client_addr,
        purpose: parts
            .headers
            .get(PURPOSE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
        channel: "http",
    };
    let disclosures = DisclosureLog::default();
    let mut response = match &prepared {
        Ok(document) => {
            let validated = document.validated();
            let schema = if validated {
                &state.prevalidated
            } else {
                &state.schema
            };
            let run = schema.execute(gql_request.data(ctx.clone()).data(disclosures.clone()));
            let is_query = document
                .summary()
                .selected(outcome.operation_name.as_deref())
                == Some("query");
            let response = if is_query {
                let limit = std::time::Duration::from_secs(state.limits.max_query_secs);
                tokio::time::timeout(limit, run).await.unwrap_or_else(|_| {
                    async_graphql::Response::from_errors(vec![crate::error::with_code(
                        async_graphql::ServerError::new(
                            format!(
                                "the query ran longer than {} s and was stopped",
                                state.limits.max_query_secs
                            ),
                            None,
                        ),
                        ErrorCode::LimitExceeded,
                    )])
                })
            } else {
                run.await
            };
            // Request errors (parse, validation, limits, operation selection) have no path;
            // a run without any means the document passed every rule.
            if !validated && response.errors.iter().all(|e| !e.path.is_empty()) {
                document.mark_validated();
            }
            response
        }
        Err(parse_error) => async_graphql::Response::from_errors(vec![parse_error.clone()]),
    };
    crate::error::code_request_errors(&mut response.errors);
    // Personal data shown to a partner is on the record before it leaves.
    let entries = disclosures.entries(&ctx);
    if !entries.is_empty()
        && let Err(e) = state.audit.record_all(entries).await
    {
        tracing::error!(request_id, error = %e, "disclosure records not written; withholding the response");
        outcome.error_code = Some(ErrorCode::Internal);
        return (
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            ),
            outcome,
        );
    }
    if let Ok(document) = &prepared {
        let summary = document.summary();
        outcome.operation_type = summary
            .selected(outcome.operation_name.as_deref())
            .unwrap_or("unknown");
        outcome.operation_name = summary.selected_name(outcome.operation_name.as_deref());
    }

    // Every error leaves with a code; one without is internal, and its text stays in the log.
    for error in &mut response.errors {
        if error_code(error).is_none() {
            tracing::error!(request_id, error = %error.message, path = ?error.path, "uncoded error in GraphQL execution");
            error.message = format!("internal error (request id {request_id})");
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::Internal.as_str());
            error.source = None;
        }
    }
    let codes: Vec<ErrorCode> = response.errors.iter().filter_map(error_code).collect();
    outcome.error_code = codes.first().copied();
    let body = serde_json::to_vec(&response)
        .unwrap_or_else(|_| b"{\"errors\":[{\"message\":\"internal error\"}]}".to_vec());
    let mut http = (StatusCode::OK, body).into_response();
    http.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    (http, outcome)
}

/// SHA-256 of the variables as JSON. Most requests have none, and share one hash.
pub(crate) fn variables_hash(variables: &async_graphql::Variables) -> String {
    static NONE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| sha256_hex(b"{}"));
    if variables.is_empty() {
        return NONE.clone();
    }
    sha256_hex(
        serde_json::to_string(variables)
            .unwrap_or_default()
            .as_bytes(),
    )
}

/// The code an error carries in `extensions.code`, if it is one of ours.
fn error_code(error: &async_graphql::ServerError) -> Option<ErrorCode> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(s) => ErrorCode::parse(s),
        _ => None,
    }
}

pub(crate) fn authenticate(auth: &Authenticator, headers: &HeaderMap) -> Result<Principal, String> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| crate::AuthError::Missing.to_string())?;
    let token = value
        .to_str()
        .ok()
        .and_then(crate::auth::bearer)
        .ok_or_else(|| crate::AuthError::Missing.to_string())?;
    auth.verify(token)
        .map(|(p, _)| p)
        .map_err(|e| e.to_string())
}

/// One GraphQL request as JSON. Batches are refused: they would let one request stand for many.
fn parse_body(bytes: &[u8]) -> Result<async_graphql::Request, String> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err("batched requests are not accepted; send one operation per request".into());
    }
    // The usual case in one pass; anything it does not take is looked at again below, only to
    // say what is wrong.
    if let Ok(request) = serde_json::from_slice::<async_graphql::Request>(bytes)
        && !request.query.is_empty()
    {
        return Ok(request);
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("request body is not JSON: {e}"))?;
    if !value.get("query").is_some_and(|q| q.is_string()) {
        return Err("request body needs a `query` string".into());
    }
    serde_json::from_value(value).map_err(|e| format!("request body is not a GraphQL request: {e}"))
}

/// A GraphQL-shaped error body for requests refused before execution.
pub(crate) fn error_response(status: StatusCode, code: ErrorCode, message: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code.as_str()}}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Operation names come from callers: keep metric labels short and plain.
fn metric_label(name: &str) -> &str {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name
    } else {
        "invalid_name"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_variables_hash_as_the_empty_json_object_and_others_as_their_json() {
        let none = async_graphql::Variables::default();
        assert_eq!(variables_hash(&none), sha256_hex(b"{}"));
        let some = async_graphql::Variables::from_json(json!({"id": "7"}));
        assert_eq!(variables_hash(&some), sha256_hex(br#"{"id":"7"}"#));
    }
}
