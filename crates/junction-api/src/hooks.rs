//! `POST /hooks/{connector}`: a back-end's updates pushed as signed JSON, for systems that can
//! call a webhook but not Open311. The signature is the credential: HMAC-SHA256, keyed with the
//! connector's `push_secret`, over `<timestamp>.<body>`, sent as `X-Junction-Signature:
//! sha256=<hex>` with the Unix time in `X-Junction-Timestamp`; a timestamp more than five
//! minutes from now is refused, so a captured request cannot be replayed later (and a replay
//! within the window changes nothing: updates are applied once per `update_id`).
//!
//! The body is `{"updates": [...]}`, each update with Open311's names (`update_id`,
//! `service_request_id`, `status`, `external_status_code`, `description`, `updated_datetime`,
//! `media_urls`, and `junction_id` where the back-end echoes ours). Every update is read before
//! any is applied: one that cannot be read refuses the whole body (400, naming its position,
//! field and reason), so nothing is half-applied. The answer lists each update's outcome.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use junction_domain::StatusMap;
use junction_domain::inbound::InboundUpdate;
use junction_store::inbound::{self, Outcome};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::ErrorCode;
use crate::layer::{ApiState, Operation, audited, error_response, request_meta};

/// The most one body may hold.
pub const MAX_BODY_BYTES: usize = 1 << 20;
/// The most updates one body may carry.
pub const MAX_UPDATES: usize = 1_000;
/// How far a signed timestamp may be from now, in seconds.
pub const REPLAY_WINDOW_SECS: i64 = 300;

/// A connector that accepts pushed updates: its secret and its status map.
#[derive(Clone)]
pub struct Hook {
    pub secret: SecretString,
    pub statuses: StatusMap,
}

/// Every connector accepting pushed updates, by id.
pub type Hooks = Arc<BTreeMap<String, Hook>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    updates: Vec<Pushed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Pushed {
    update_id: String,
    service_request_id: String,
    #[serde(default)]
    junction_id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    external_status_code: Option<String>,
    #[serde(default)]
    description: String,
    updated_datetime: String,
    #[serde(default)]
    media_urls: Vec<String>,
}

type Refusal = (StatusCode, ErrorCode, String);

fn refuse(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Refusal {
    (status, code, message.into())
}

/// Checks the signature and the timestamp's age; `now` in Unix seconds.
pub fn verify(secret: &str, headers: &HeaderMap, body: &[u8], now: i64) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let ts = header("x-junction-timestamp").ok_or("X-Junction-Timestamp is missing")?;
    let at: i64 = ts
        .parse()
        .map_err(|_| "X-Junction-Timestamp is not a Unix time in seconds")?;
    if (now - at).abs() > REPLAY_WINDOW_SECS {
        return Err(format!(
            "X-Junction-Timestamp is more than {REPLAY_WINDOW_SECS} s from now"
        ));
    }
    let sig = header("x-junction-signature")
        .and_then(|s| s.strip_prefix("sha256="))
        .ok_or("X-Junction-Signature is missing or not sha256=<hex>")?;
    let sig = hex::decode(sig).map_err(|_| "X-Junction-Signature is not hex")?;
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .map_err(|_| "the secret cannot key HMAC")?;
    mac.update(ts.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig)
        .map_err(|_| "X-Junction-Signature does not match".to_string())
}

/// Reads every update, or names the first problem of each that cannot be read.
fn read(body: &[u8]) -> Result<Vec<InboundUpdate>, String> {
    let body: Body = serde_json::from_slice(body).map_err(|e| format!("body: {e}"))?;
    if body.updates.len() > MAX_UPDATES {
        return Err(format!("updates: more than {MAX_UPDATES} in one body"));
    }
    let mut problems = Vec::new();
    let mut updates = Vec::with_capacity(body.updates.len());
    for (i, p) in body.updates.into_iter().enumerate() {
        let at = |field: &str, why: &str| format!("updates[{i}].{field}: {why}");
        if p.update_id.trim().is_empty() {
            problems.push(at("update_id", "is empty"));
        }
        if p.service_request_id.trim().is_empty() && p.junction_id.is_none() {
            problems.push(at(
                "service_request_id",
                "is empty and no junction_id is given",
            ));
        }
        let when = DateTime::parse_from_rfc3339(&p.updated_datetime)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                problems.push(at(
                    "updated_datetime",
                    "is not a W3C date-time with a zone, e.g. 2026-01-31T09:30:00Z",
                ))
            });
        if p.description.chars().count() > junction_domain::case::MAX_NOTE_CHARS {
            problems.push(at("description", "is too long"));
        }
        if let Ok(updated_at) = when {
            updates.push(InboundUpdate {
                update_id: p.update_id.trim().to_string(),
                external_ref: p.service_request_id.trim().to_string(),
                our_id: p.junction_id,
                status: p.status,
                external_status_code: p.external_status_code,
                description: p.description,
                media_urls: p.media_urls,
                updated_at,
            });
        }
    }
    if problems.is_empty() {
        Ok(updates)
    } else {
        Err(problems.join("; "))
    }
}

async fn apply(
    state: &ApiState,
    connector: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Value, Refusal> {
    let hook = state.hooks.get(connector).ok_or_else(|| {
        refuse(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no connector `{connector}` accepts pushed updates"),
        )
    })?;
    verify(
        hook.secret.expose_secret(),
        headers,
        body,
        Utc::now().timestamp(),
    )
    .map_err(|why| refuse(StatusCode::UNAUTHORIZED, ErrorCode::Unauthenticated, why))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::LimitExceeded,
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ));
    }
    let updates =
        read(body).map_err(|why| refuse(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, why))?;
    let mapped: Vec<_> = updates
        .iter()
        .map(|u| {
            let m = hook
                .statuses
                .map(u.status.as_deref(), u.external_status_code.as_deref());
            (u.clone(), m)
        })
        .collect();
    let outcomes = inbound::apply_batch(&state.store, connector, &mapped)
        .await
        .map_err(|e| {
            tracing::error!(connector, error = %e, "pushed updates not applied");
            refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                "internal error",
            )
        })?;
    let results: Vec<Value> = updates
        .iter()
        .zip(&outcomes)
        .map(|(u, o)| match o {
            Outcome::Applied { update, .. } => {
                json!({"update_id": u.update_id, "outcome": "applied", "junction_update_id": update})
            }
            Outcome::Repeat => json!({"update_id": u.update_id, "outcome": "repeat"}),
            Outcome::Held => json!({"update_id": u.update_id, "outcome": "held"}),
        })
        .collect();
    Ok(json!({ "results": results }))
}

/// `POST /hooks/{connector}`.
pub(crate) async fn receive(
    State(state): State<Arc<ApiState>>,
    Path(connector): Path<String>,
    request: Request,
) -> Response {
    let op = Operation::new("pushed_updates", "hook", Instant::now());
    let (request_id, client_addr) = request_meta(&request);
    let headers = request.headers().clone();
    let body: Bytes = match axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES + 1).await {
        Ok(b) => b,
        Err(_) => {
            let response = error_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::LimitExceeded,
                &format!("the body is larger than {MAX_BODY_BYTES} bytes"),
            );
            return audited(
                &state,
                None,
                &request_id,
                client_addr,
                op,
                Some(ErrorCode::LimitExceeded),
                response,
            )
            .await;
        }
    };
    let (response, code) = match apply(&state, &connector, &headers, &body).await {
        Ok(answer) => ((StatusCode::OK, axum::Json(answer)).into_response(), None),
        Err((status, code, message)) => (error_response(status, code, &message), Some(code)),
    };
    audited(&state, None, &request_id, client_addr, op, code, response).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signed(secret: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(format!("{ts}.").as_bytes());
        mac.update(body);
        let mut h = HeaderMap::new();
        h.insert("x-junction-timestamp", ts.to_string().parse().unwrap());
        h.insert(
            "x-junction-signature",
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
                .parse()
                .unwrap(),
        );
        h
    }

    #[test]
    fn a_signature_must_match_its_body_and_be_recent() {
        let body = br#"{"updates":[]}"#;
        let now = 1_800_000_000;
        assert!(verify("s3cret", &signed("s3cret", now, body), body, now).is_ok());
        let tampered = br#"{"updates":[{}]}"#;
        assert!(verify("s3cret", &signed("s3cret", now, body), tampered, now).is_err());
        assert!(verify("other", &signed("s3cret", now, body), body, now).is_err());
        let old = verify("s3cret", &signed("s3cret", now - 301, body), body, now).unwrap_err();
        assert!(old.contains("300 s"), "{old}");
        assert!(verify("s3cret", &HeaderMap::new(), body, now).is_err());
    }

    #[test]
    fn every_update_is_read_before_any_is_applied_and_problems_are_named() {
        let body = br#"{"updates":[
            {"update_id":"1","service_request_id":"A","updated_datetime":"2026-12-08T10:00:00Z","status":"closed"},
            {"update_id":"","service_request_id":"A","updated_datetime":"yesterday"}
        ]}"#;
        let why = read(body).unwrap_err();
        assert!(why.contains("updates[1].update_id: is empty"), "{why}");
        assert!(why.contains("updates[1].updated_datetime"), "{why}");
        assert!(read(br#"{"updates":[{"update_id":"1","nonsense":true}]}"#).is_err());
        let ok = read(br#"{"updates":[{"update_id":"1","service_request_id":" A ","updated_datetime":"2026-12-08T11:00:00+01:00"}]}"#).unwrap();
        assert_eq!(ok[0].external_ref, "A");
        assert_eq!(ok[0].updated_at.to_rfc3339(), "2026-12-08T10:00:00+00:00");
    }
}
