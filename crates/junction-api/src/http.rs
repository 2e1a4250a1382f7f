//! GraphQL over HTTP (`POST /graphql`): authenticate, execute, audit, respond.
//!
//! Every request, whether it runs, fails, or is refused before running (no token, bad token,
//! body too large, malformed JSON, a document over the depth or complexity limit), writes
//! exactly one audit record, and the response is sent only once that record is durable.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use junction_domain::Principal;
use tracing::Instrument;

use crate::graphql::access::DisclosureLog;

use crate::layer::{
    ApiState, PURPOSE_HEADER, authenticate, error_response, request_meta, unauthenticated,
    variables_hash,
};
use crate::{ErrorCode, RequestAudit, RequestCtx};

/// Facts about one request, gathered as it is handled and written to the audit log at the end.
struct Outcome {
    principal: Option<Principal>,
    operation_name: Option<String>,
    operation_type: &'static str,
    variables_hash: Option<String>,
    /// The first error's code; none when the request succeeded.
    error_code: Option<ErrorCode>,
}

/// Runs each request in its own task: if the caller hangs up, axum drops this handler's
/// future, but the request still finishes and its audit record is still written.
pub(crate) async fn graphql(State(state): State<Arc<ApiState>>, request: Request) -> Response {
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

    let mut gql_request = match read_request(state, body).await {
        Ok(r) => r,
        Err((response, code)) => {
            outcome.error_code = Some(code);
            return (response, outcome);
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
            let request = gql_request.data(ctx.clone()).data(disclosures.clone());
            execute(state, document, request, outcome.operation_name.as_deref()).await
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

    hide_uncoded_errors(&mut response.errors, request_id);
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

/// Reads the body, within the size limit, as a GraphQL-over-HTTP request.
async fn read_request(
    state: &ApiState,
    body: axum::body::Body,
) -> Result<async_graphql::Request, (Response, ErrorCode)> {
    let Ok(bytes) = axum::body::to_bytes(Body::new(body), state.limits.max_body_bytes).await else {
        let message = format!(
            "request body is larger than the {} bytes allowed",
            state.limits.max_body_bytes
        );
        let code = ErrorCode::LimitExceeded;
        return Err((
            error_response(StatusCode::PAYLOAD_TOO_LARGE, code, &message),
            code,
        ));
    };
    parse_body(&bytes).map_err(|message| {
        let code = ErrorCode::BadRequest;
        (
            error_response(StatusCode::BAD_REQUEST, code, &message),
            code,
        )
    })
}

/// Runs a parsed document: against the schema that skips validation once the document has
/// passed it, and within the time limit when it is a query.
async fn execute(
    state: &ApiState,
    document: &crate::graphql::PreparedDocument,
    request: async_graphql::Request,
    operation_name: Option<&str>,
) -> async_graphql::Response {
    let validated = document.validated();
    let schema = if validated {
        &state.prevalidated
    } else {
        &state.schema
    };
    let run = schema.execute(request);
    let is_query = document.summary().selected(operation_name) == Some("query");
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
    // Request errors (parse, validation, limits, operation selection) have no path; a run
    // without any means the document passed every rule.
    if !validated && response.errors.iter().all(|e| !e.path.is_empty()) {
        document.mark_validated();
    }
    response
}

/// Every error leaves with a code; one without is internal, and its text stays in the log.
fn hide_uncoded_errors(errors: &mut [async_graphql::ServerError], request_id: &str) {
    for error in errors {
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
}

/// The code an error carries in `extensions.code`, if it is one of ours.
fn error_code(error: &async_graphql::ServerError) -> Option<ErrorCode> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(s) => ErrorCode::parse(s),
        _ => None,
    }
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

/// Operation names come from callers: keep metric labels short and plain.
fn metric_label(name: &str) -> &str {
    if name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name
    } else {
        "invalid_name"
    }
}
