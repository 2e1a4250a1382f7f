//! The connector conformance suite (docs/connectors/SPEC.md): every connector kind, against a
//! real peer on loopback, answers the same situations the same way. Each kind gives a
//! [`Subject`] from its own file here; the contract tests below run over every subject alike.

mod email;
mod open311;
mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use junction_connectors::{Capabilities, Connector, ConnectorParams, Deliver, Outbound, build};
use junction_domain::{Case, CaseStatus, Finding, Location, Submitter};
use serde_json::json;

use crate::support::init;

pub(super) fn case() -> Case {
    Case {
        id: "0190-case".into(),
        reference: "42".into(),
        jurisdiction_id: "borsetshire".into(),
        case_type_code: "POT".into(),
        agency_id: "highways".into(),
        status: CaseStatus::Open,
        description: "Deep hole".into(),
        location: Location {
            lat: Some(50.71),
            long: Some(-2.44),
            uprn: None,
            address: Some("1 High St".into()),
        },
        submitter: Submitter {
            name: Some("Pat Reporter".into()),
            email: Some("pat@example.org".into()),
            phone: None,
        },
        fields: BTreeMap::from([("depth_cm".to_string(), json!(12))]),
        created_at: "2026-12-07T09:30:00Z".parse().unwrap(),
        updated_at: "2026-12-07T09:30:00Z".parse().unwrap(),
        status_at: None,
        version: 1,
        route: None,
        source_ref: None,
        media_urls: Vec::new(),
        created_by: "tester".into(),
    }
}

/// A first attempt at delivering `case` to `to`.
pub(super) fn outbound<'a>(case: &'a Case, to: &'a [String], key: &'a str) -> Outbound<'a> {
    Outbound {
        case,
        service_name: "Pothole",
        route: None,
        idempotency_key: key,
        attempt: 1,
        first_attempt_at: None,
        pending_token: None,
        to,
        notice: None,
        files: &[],
    }
}

/// The deliver-a-case capability, which every kind here offers.
pub(super) fn deliverer(caps: Capabilities) -> Arc<dyn Deliver> {
    caps.deliver_case.expect("every kind here delivers cases")
}

/// What a peer is told to do with the next request.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Peer {
    Accept,
    /// Refuse the content for good.
    Refuse,
    /// Fail for now, saying so.
    Fail,
    /// Take the request and never answer.
    Hang,
    /// Answer in a way the protocol does not allow (an HTML page, a redirect to a login page,
    /// a line that is not SMTP).
    Garble,
}

/// A connector under test with a way to steer its peer.
pub(super) struct Subject {
    pub name: &'static str,
    pub connector: Arc<dyn Deliver>,
    pub base: Arc<dyn Connector>,
    pub steer: Box<dyn Fn(Peer) + Send + Sync>,
    /// The same kind's parameters aimed at `port`, where nothing listens.
    pub nobody_at: fn(u16) -> ConnectorParams,
    /// The idempotency keys the peer has taken, in order of arrival.
    pub keys_seen: Box<dyn Fn() -> Vec<String> + Send + Sync>,
}

/// One subject of every kind.
async fn subjects() -> Vec<Subject> {
    vec![
        open311::subject().await,
        webhook::subject().await,
        email::subject().await,
    ]
}

/// A port where nothing listens.
fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test]
async fn every_connector_says_whether_its_other_side_is_there() {
    init();
    for s in subjects().await {
        let health = s.base.health_check().await;
        assert!(health.is_healthy(), "{}: {health:?}", s.name);
        assert!(!s.base.target().is_empty(), "{}", s.name);
        assert!(
            (s.keys_seen)().is_empty(),
            "{}: a health check sends nothing",
            s.name
        );
        let nobody = (s.nobody_at)(closed_port());
        let caps = build(&nobody, &|_| Ok("x".to_string())).unwrap();
        let health = caps.base.health_check().await;
        assert!(!health.is_healthy(), "{}: nobody there: {health:?}", s.name);
    }
}

#[tokio::test]
async fn every_connector_classifies_outcomes_alike() {
    init();
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:x");
    for s in subjects().await {
        (s.steer)(Peer::Accept);
        let ok = s.connector.deliver(&out).await;
        assert!(
            ok.is_ok(),
            "{}: accepted: {:?}",
            s.name,
            ok.err().map(|e| e.error)
        );

        (s.steer)(Peer::Refuse);
        let e = s.connector.deliver(&out).await.unwrap_err().error;
        assert!(!e.retriable, "{}: a refusal is permanent: {e:?}", s.name);
        assert!(!e.message.is_empty());

        (s.steer)(Peer::Fail);
        let e = s.connector.deliver(&out).await.unwrap_err().error;
        assert!(
            e.retriable && !e.ambiguous,
            "{}: a failure for now is transient: {e:?}",
            s.name
        );
        assert!(e.response.is_some(), "{}: the raw answer is kept", s.name);

        (s.steer)(Peer::Hang);
        let e = s.connector.deliver(&out).await.unwrap_err().error;
        assert!(
            e.retriable && e.ambiguous,
            "{}: no answer is ambiguous: {e:?}",
            s.name
        );

        (s.steer)(Peer::Garble);
        let answer = s.connector.deliver(&out).await;
        let e = answer
            .expect_err("an answer the protocol does not allow is not acceptance")
            .error;
        assert!(
            e.retriable,
            "{}: a malformed answer is tried again: {e:?}",
            s.name
        );
        assert!(
            e.response.is_some(),
            "{}: the malformed answer is kept: {e:?}",
            s.name
        );

        // Nothing listening: transient, and nothing can have arrived.
        let nobody = (s.nobody_at)(closed_port());
        let connector = deliverer(build(&nobody, &|_| Ok("x".into())).unwrap());
        let e = connector.deliver(&out).await.unwrap_err().error;
        assert!(
            e.retriable && !e.ambiguous,
            "{}: refused connection: {e:?}",
            s.name
        );
        (s.steer)(Peer::Accept);
    }
}

/// The outcome contract after an unanswered attempt (SPEC.md, "Unknown outcomes"): each kind
/// either proves what happened, or declares that the other side recognises a resend and then
/// carries the same key on every attempt, or admits it can do neither (a person decides).
#[tokio::test]
async fn every_connector_proves_an_unanswered_attempt_or_makes_its_resend_recognisable() {
    init();
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:x");
    for s in subjects().await {
        let proof = s.connector.proof();
        (s.steer)(Peer::Hang);
        let e = s.connector.deliver(&out).await.unwrap_err().error;
        assert!(e.ambiguous, "{}: {e:?}", s.name);
        (s.steer)(Peer::Accept);
        if proof.can_ask {
            assert!(
                matches!(s.connector.find(&out).await, Finding::Arrived { .. }),
                "{}: the hung request is found",
                s.name
            );
        }
        if proof.dedupes {
            s.connector.deliver(&out).await.unwrap();
            let keys = (s.keys_seen)();
            assert_eq!(keys.len(), 2, "{}: {keys:?}", s.name);
            assert_eq!(
                keys[0], keys[1],
                "{}: a resend carries the same key",
                s.name
            );
        }
        assert!(
            proof.can_ask || proof.dedupes,
            "{}: every subject here proves or dedupes",
            s.name
        );
    }
}
