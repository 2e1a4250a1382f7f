//! Revoked tokens: refused on the next request once the list is reloaded, and an open
//! subscription holding one is closed, on the record.

use std::time::{Duration, Instant};

use base64::Engine;
use junction_domain::{Actor, Role};
use junction_store::revocations::{self, Revoked};
use serde_json::{Value, json};

use super::subscriptions::Ws;
use super::{SHARING, partner};
use crate::support::{TestServer, code, data};

/// The `jti` a token carries.
fn jti(token: &str) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["jti"].as_str().unwrap().to_string()
}

/// Asks `{ me }` with `token` until it is refused, for at most ten seconds.
async fn until_refused(s: &TestServer, token: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = s.gql(Some(token), "{ me { subject } }", json!({})).await;
        if status == 401 {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "the revoked token is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_their_subscriptions_closed() {
    let s = TestServer::start(&format!("{SHARING}\n[auth]\nrevocation_poll_secs = 1\n")).await;
    let leaked = s.token_for("dave", None, &[Role::Officer]);
    let other = s.token_for("erin", None, &[Role::Officer]);
    let (status, _) = s.gql(Some(&leaked), "{ me { subject } }", json!({})).await;
    assert_eq!(status, 200);

    // One token, by its id: refused (a remembered verification counts for nothing), while
    // another token of another subject goes on working.
    let admin = Actor::internal("test");
    let reason = "token pasted into a ticket";
    revocations::revoke(s.store(), &admin, Revoked::Token(jti(&leaked)), reason)
        .await
        .unwrap();
    let body = until_refused(&s, &leaked).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    assert!(body.to_string().contains("revoked"), "{body}");
    let (status, _) = s.gql(Some(&other), "{ me { subject } }", json!({})).await;
    assert_eq!(status, 200);

    // Every token of a subject: an open subscription is closed with 4401.
    let police = partner(&s, "police");
    let mut ws = Ws::connect(&s, &police, "crime_prevention").await;
    ws.subscribe(None).await;
    revocations::revoke(
        s.store(),
        &admin,
        Revoked::Subject {
            subject: "police-user".into(),
            issued_before: chrono::Utc::now(),
        },
        "officer left",
    )
    .await
    .unwrap();
    let closed = ws.closing().await;
    assert_eq!(closed["code"], 4401, "{closed}");
    let body = until_refused(&s, &police).await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    // A token issued after the revocation is good.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let fresh = partner(&s, "police");
    let (status, body) = s.gql(Some(&fresh), "{ me { subject } }", json!({})).await;
    assert_eq!(status, 200, "{body}");

    // The revocations and the closed connection are on the audit log.
    let auditor = s.token(&[Role::Auditor]);
    let (_, body) = s
        .gql(
            Some(&auditor),
            "{ auditLog(first: 100) { edges { node { operationName errorCode objectType action } } } }",
            json!({}),
        )
        .await;
    let records = data(&body)["auditLog"]["edges"].to_string();
    assert_eq!(records.matches("\"revoke\"").count(), 2, "{records}");
    assert!(records.contains("connection_close"), "{records}");
}
