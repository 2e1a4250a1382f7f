//! What every surface shares (GraphQL over HTTP and WebSocket, the export, attachments):
//! the state behind the routes, who is asking, the request's id and address, the one audit
//! record each request leaves (through [`RequestAudit`]), and error bodies. Surfaces use this
//! and never each other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use junction_domain::Principal;
use junction_domain::audit::sha256_hex;
use junction_store::Store;
use junction_store::audit::AuditWriter;
use serde_json::json;

use crate::graphql::{JunctionSchema, Limits};
use crate::{Authenticator, ErrorCode, RequestAudit};

/// The header a partner states its purpose in.
pub const PURPOSE_HEADER: &str = "junction-purpose";

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
    /// Connectors whose back-ends push signed updates to `/hooks/{connector}`.
    pub hooks: crate::hooks::Hooks,
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
