//! Webhooks under the conformance suite: a receiver on loopback that checks every signature
//! and answers as steered; and what it is sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use junction_connectors::{ConnectorKind, ConnectorParams, build, webhook};
use serde_json::{Value, json};

use super::{Peer, Subject, case, deliverer, outbound};
use crate::support::init;

fn params(url: &str) -> ConnectorParams {
    ConnectorParams::parse(
        ConnectorKind::Webhook,
        json!({"url": url, "signing_secret": "${S}", "timeout_secs": 1}),
        &mut |_| {},
    )
    .unwrap()
}

/// What the receiver took: each accepted body, and the key of every request that arrived.
#[derive(Clone, Default)]
struct Received {
    bodies: Arc<Mutex<Vec<Value>>>,
    keys: Arc<Mutex<Vec<String>>>,
}

/// A receiver that checks the signature and answers as `mode` says.
async fn receiver(mode: Arc<Mutex<Peer>>, received: Received) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let mode = *mode.lock().unwrap();
            let received = received.clone();
            async move {
                let ts: i64 = headers["x-junction-timestamp"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let sig = headers["x-junction-signature"].to_str().unwrap();
                assert_eq!(
                    sig,
                    webhook::signature("hook-secret", ts, &body),
                    "signature checks out"
                );
                assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
                let key = headers["idempotency-key"].to_str().unwrap().to_string();
                received.keys.lock().unwrap().push(key);
                match mode {
                    Peer::Accept => {
                        let json = serde_json::from_slice(&body).unwrap();
                        received.bodies.lock().unwrap().push(json);
                        StatusCode::ACCEPTED.into_response()
                    }
                    Peer::Refuse => StatusCode::UNPROCESSABLE_ENTITY.into_response(),
                    Peer::Fail => StatusCode::BAD_GATEWAY.into_response(),
                    Peer::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        StatusCode::OK.into_response()
                    }
                    // A receiver behind single sign-on sends callers to its login page.
                    Peer::Garble => (
                        StatusCode::FOUND,
                        [(header::LOCATION, "/login")],
                        "<html><body>Please sign in</body></html>",
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    format!("http://{addr}/hook")
}

async fn subject_with(received: Received) -> Subject {
    let mode = Arc::new(Mutex::new(Peer::Accept));
    let url = receiver(mode.clone(), received.clone()).await;
    let caps = build(&params(&url), &|_| Ok("hook-secret".to_string())).unwrap();
    Subject {
        name: "webhook",
        connector: deliverer(caps.clone()),
        base: caps.base,
        steer: Box::new(move |p| *mode.lock().unwrap() = p),
        nobody_at: |port| params(&format!("http://127.0.0.1:{port}/hook")),
        keys_seen: Box::new(move || received.keys.lock().unwrap().clone()),
    }
}

pub(super) async fn subject() -> Subject {
    subject_with(Received::default()).await
}

#[tokio::test]
async fn the_receiver_gets_the_case_with_its_idempotency_key_and_a_redirect_is_not_followed() {
    init();
    let received = Received::default();
    let s = subject_with(received.clone()).await;
    let c = case();
    let out = outbound(&c, &[], "0190-case:x");
    s.connector.deliver(&out).await.unwrap();
    let got = received.bodies.lock().unwrap().clone();
    assert_eq!(got[0]["reference"], "42");
    assert_eq!(got[0]["idempotency_key"], "0190-case:x");
    // Following a redirect would turn the POST into a GET elsewhere: it is an answer, kept.
    (s.steer)(Peer::Garble);
    let e = s.connector.deliver(&out).await.unwrap_err().error;
    assert!(e.message.contains("302"), "{e:?}");
    assert_eq!(
        received.keys.lock().unwrap().len(),
        2,
        "one request each, nothing followed"
    );
}
