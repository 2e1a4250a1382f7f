//! The connector conformance suite (docs/connectors/SPEC.md): every delivery connector, against
//! a real peer on loopback, classifies the same situations the same way.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use junction_connectors::{
    Capabilities, Connector, ConnectorKind, ConnectorParams, Deliver, Outbound, build, webhook,
};
use junction_domain::{Case, CaseStatus, Finding, Location, Proof, Submitter};
use junction_server::sim::{Behaviour, Simulator};
use serde_json::{Value, json};

use crate::support::{SmtpMode, SmtpSink, init};

fn case() -> Case {
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
        created_at: chrono::Utc::now(),
        updated_at: chrono::Utc::now(),
        version: 1,
        route: None,
        source_ref: None,
        media_urls: Vec::new(),
        created_by: "tester".into(),
    }
}

/// A first attempt at delivering `case` to `to`.
fn outbound<'a>(case: &'a Case, to: &'a [String], key: &'a str) -> Outbound<'a> {
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
fn deliverer(caps: Capabilities) -> Arc<dyn Deliver> {
    caps.deliver_case.expect("every kind here delivers cases")
}

/// What a peer is told to do next.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Peer {
    Accept,
    Refuse,
    Fail,
    Hang,
}

/// A connector under test with a way to steer its peer.
struct Subject {
    name: &'static str,
    connector: Arc<dyn Deliver>,
    base: Arc<dyn Connector>,
    steer: Box<dyn Fn(Peer) + Send + Sync>,
}

async fn open311_subject() -> Subject {
    let sim = Simulator::new(Behaviour::default());
    let (addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let params = ConnectorParams::parse(
        ConnectorKind::Open311,
        json!({"endpoint": format!("http://{addr}/open311/v2/"), "api_key": "${K}", "timeout_secs": 1}),
        &mut |_| {},
    )
    .unwrap();
    let caps = build(&params, &|_| Ok("key".to_string())).unwrap();
    let connector = deliverer(caps.clone());
    Subject {
        base: caps.base,
        name: "open311",
        connector,
        steer: Box::new(move |p| {
            sim.set_behaviour(match p {
                Peer::Accept => Behaviour::default(),
                Peer::Refuse => Behaviour {
                    fail_next: 1,
                    fail_status: Some(400),
                    ..Behaviour::default()
                },
                Peer::Fail => Behaviour {
                    fail_next: 1,
                    ..Behaviour::default()
                },
                Peer::Hang => Behaviour {
                    hang_next: 1,
                    ..Behaviour::default()
                },
            })
        }),
    }
}

/// A webhook receiver that checks the signature and answers as steered.
async fn webhook_subject(received: Arc<Mutex<Vec<Value>>>) -> Subject {
    let mode = Arc::new(Mutex::new(Peer::Accept));
    let m = mode.clone();
    let r = received.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let mode = *m.lock().unwrap();
            let r = r.clone();
            async move {
                let ts: i64 = headers["x-junction-timestamp"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                let sig = headers["x-junction-signature"]
                    .to_str()
                    .unwrap()
                    .to_string();
                assert_eq!(
                    sig,
                    webhook::signature("hook-secret", ts, &body),
                    "signature checks out"
                );
                assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
                assert!(headers.contains_key("idempotency-key"));
                match mode {
                    Peer::Accept => {
                        r.lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap());
                        StatusCode::ACCEPTED
                    }
                    Peer::Refuse => StatusCode::UNPROCESSABLE_ENTITY,
                    Peer::Fail => StatusCode::BAD_GATEWAY,
                    Peer::Hang => {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        StatusCode::OK
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let params = ConnectorParams::parse(
        ConnectorKind::Webhook,
        json!({"url": format!("http://{addr}/hook"), "signing_secret": "${S}", "timeout_secs": 1}),
        &mut |_| {},
    )
    .unwrap();
    let caps = build(&params, &|_| Ok("hook-secret".to_string())).unwrap();
    let connector = deliverer(caps.clone());
    Subject {
        base: caps.base,
        name: "webhook",
        connector,
        steer: Box::new(move |p| *mode.lock().unwrap() = p),
    }
}

async fn email_subject(sink: SmtpSink, port: u16) -> Subject {
    let params = ConnectorParams::parse(
        ConnectorKind::Email,
        json!({"smtp_host": "127.0.0.1", "smtp_port": port, "tls": "none", "from": "junction@borsetshire.example", "timeout_secs": 2}),
        &mut |_| {},
    )
    .unwrap();
    let caps = build(&params, &|_| Ok(String::new())).unwrap();
    let connector = deliverer(caps.clone());
    Subject {
        base: caps.base,
        name: "email",
        connector,
        steer: Box::new(move |p| {
            let set = |counter: &std::sync::atomic::AtomicU32, on: bool| {
                counter.store(u32::from(on), std::sync::atomic::Ordering::SeqCst)
            };
            set(&sink.refuse_next, p == Peer::Refuse);
            set(&sink.fail_next, p == Peer::Fail);
            set(&sink.hang_next, p == Peer::Hang);
        }),
    }
}

#[tokio::test]
async fn every_connector_says_whether_its_other_side_is_there() {
    init();
    let (sink, port) = SmtpSink::start().await;
    let subjects = vec![
        open311_subject().await,
        webhook_subject(Arc::new(Mutex::new(Vec::new()))).await,
        email_subject(sink.clone(), port).await,
    ];
    for s in &subjects {
        let health = s.base.health_check().await;
        assert!(health.is_healthy(), "{}: {health:?}", s.name);
        assert!(!s.base.target().is_empty(), "{}", s.name);
    }
    assert!(sink.messages().is_empty(), "a health check sends nothing");

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    // An Open311 endpoint that answers its service list with an HTML error page.
    let app = axum::Router::new().route(
        "/open311/v2/services.xml",
        axum::routing::get(|| async {
            "<html><body>Service temporarily unavailable</body></html>"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let html = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    for (kind, params) in [
        (
            ConnectorKind::Open311,
            json!({"endpoint": format!("http://127.0.0.1:{closed}/open311/v2/"), "api_key": "${K}", "timeout_secs": 1}),
        ),
        (
            ConnectorKind::Open311,
            json!({"endpoint": format!("http://{html}/open311/v2/"), "api_key": "${K}", "timeout_secs": 1}),
        ),
        (
            ConnectorKind::Webhook,
            json!({"url": format!("http://127.0.0.1:{closed}/hook"), "signing_secret": "${S}", "timeout_secs": 1}),
        ),
        (
            ConnectorKind::Email,
            json!({"smtp_host": "127.0.0.1", "smtp_port": closed, "tls": "none", "from": "j@b.example", "timeout_secs": 1}),
        ),
    ] {
        let params = ConnectorParams::parse(kind, params.clone(), &mut |_| {}).unwrap();
        let caps = build(&params, &|_| Ok("x".to_string())).unwrap();
        let health = caps.base.health_check().await;
        assert!(!health.is_healthy(), "{params:?}: {health:?}");
    }
}

#[tokio::test]
async fn every_connector_classifies_outcomes_alike() {
    init();
    let received = Arc::new(Mutex::new(Vec::new()));
    let (sink, port) = SmtpSink::start().await;
    let subjects = vec![
        open311_subject().await,
        webhook_subject(received.clone()).await,
        email_subject(sink.clone(), port).await,
    ];
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:x");
    for s in &subjects {
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
        (s.steer)(Peer::Accept);
    }
    // Nothing listening: transient, and nothing can have arrived.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    for (kind, params) in [
        (
            ConnectorKind::Open311,
            json!({"endpoint": format!("http://127.0.0.1:{closed}/"), "api_key": "${K}"}),
        ),
        (
            ConnectorKind::Webhook,
            json!({"url": format!("http://127.0.0.1:{closed}/"), "signing_secret": "${S}"}),
        ),
        (
            ConnectorKind::Email,
            json!({"smtp_host": "127.0.0.1", "smtp_port": closed, "tls": "none", "from": "a@b.example"}),
        ),
    ] {
        let p = ConnectorParams::parse(kind, params, &mut |_| {}).unwrap();
        let connector = deliverer(build(&p, &|_| Ok("x".into())).unwrap());
        let e = connector.deliver(&out).await.unwrap_err().error;
        assert!(
            e.retriable && !e.ambiguous,
            "{}: refused connection: {e:?}",
            kind.as_str()
        );
    }
    // What the webhook receiver got is the case, with the idempotency key.
    let got = received.lock().unwrap();
    assert_eq!(got[0]["reference"], "42");
    assert_eq!(got[0]["idempotency_key"], "0190-case:x");
    // The email went to the routed address with the reporter as reply-to.
    let mails = sink.messages();
    assert_eq!(mails[0].to, ["<highways@borsetshire.example>"]);
    assert!(mails[0].data.contains("Reply-To: pat@example.org"));
    assert!(mails[0].data.contains("depth_cm: 12"));
}

/// Email over STARTTLS and over TLS from the first byte, to a relay whose certificate comes
/// from a private authority named by `ca_file`; and never in the clear when TLS was asked for.
#[tokio::test]
async fn email_goes_encrypted_to_relays_that_speak_tls_and_never_in_the_clear() {
    init();
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:tls");
    let ca = format!("{}/fixtures/tls/ca.pem", env!("CARGO_MANIFEST_DIR"));
    let email = |port: u16, tls: &str, ca: Option<&str>| {
        let mut params = json!({"smtp_host": "127.0.0.1", "smtp_port": port, "tls": tls,
            "from": "junction@borsetshire.example", "timeout_secs": 5});
        if let Some(ca) = ca {
            params["ca_file"] = json!(ca);
        }
        let p = ConnectorParams::parse(ConnectorKind::Email, params, &mut |_| {}).unwrap();
        deliverer(build(&p, &|_| Ok(String::new())).unwrap())
    };
    for (mode, tls) in [
        (SmtpMode::StartTls, "starttls"),
        (SmtpMode::ImplicitTls, "tls"),
    ] {
        let (sink, port) = SmtpSink::start_with(mode).await;
        let sent = email(port, tls, Some(&ca)).deliver(&out).await;
        assert!(sent.is_ok(), "{tls}: {:?}", sent.err().map(|e| e.error));
        let mails = sink.messages();
        assert_eq!(mails.len(), 1, "{tls}");
        assert!(mails[0].encrypted, "{tls}: the message travelled encrypted");
        assert!(mails[0].data.contains("depth_cm: 12"), "{tls}");

        // Without the private authority the relay's certificate is not trusted: nothing sent.
        let e = email(port, tls, None)
            .deliver(&out)
            .await
            .unwrap_err()
            .error;
        assert!(
            e.retriable,
            "{tls}: an untrusted certificate may be fixed: {e:?}"
        );
        assert_eq!(sink.messages().len(), 1, "{tls}: nothing more arrived");
    }
    // A relay that does not offer STARTTLS gets nothing when STARTTLS was asked for.
    let (plain, port) = SmtpSink::start_with(SmtpMode::Plain).await;
    let e = email(port, "starttls", Some(&ca))
        .deliver(&out)
        .await
        .unwrap_err()
        .error;
    assert!(e.retriable, "{e:?}");
    assert!(plain.messages().is_empty(), "never sent in the clear");
    // An unreadable `ca_file` is a configuration error naming the file.
    let p = ConnectorParams::parse(
        ConnectorKind::Email,
        json!({"smtp_host": "127.0.0.1", "tls": "tls", "from": "a@b.example", "ca_file": "/nonexistent/ca.pem"}),
        &mut |_| {},
    )
    .unwrap();
    let err = build(&p, &|_| Ok(String::new())).err().expect("refused");
    assert!(err.contains("ca_file /nonexistent/ca.pem"), "{err}");
}

/// The outcome contract after an unanswered attempt (SPEC.md, "Unknown outcomes"): each kind
/// either proves what happened, never from someone else's record, or declares that the other
/// side recognises a resend, and then carries the same key on every attempt.
#[tokio::test]
async fn every_connector_proves_an_unanswered_attempt_or_makes_its_resend_recognisable() {
    init();
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:x");

    // Open311 with lookups: the hung request is found by its exact id, with its reference.
    let sim = Simulator::new(Behaviour {
        ignore_unknown_filters: true,
        ..Behaviour::default()
    });
    let (addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let open311 = |extra: Value| {
        let mut params = json!({"endpoint": format!("http://{addr}/open311/v2/"),
            "api_key": "${K}", "timeout_secs": 1});
        params
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let p = ConnectorParams::parse(ConnectorKind::Open311, params, &mut |_| {}).unwrap();
        deliverer(build(&p, &|_| Ok("key".to_string())).unwrap())
    };
    let asks = open311(json!({"lookup_by_id": true}));
    assert!(asks.proof().can_ask && !asks.proof().dedupes);
    assert_eq!(asks.find(&out).await, Finding::Absent, "nothing there yet");
    let mut other = case();
    other.id = "0190-other".into();
    let other_out = outbound(&other, &to, "0190-other:x");
    asks.deliver(&other_out).await.unwrap();
    sim.set_behaviour(Behaviour {
        ignore_unknown_filters: true,
        hang_next: 1,
        ..Behaviour::default()
    });
    let e = asks.deliver(&out).await.unwrap_err().error;
    assert!(e.ambiguous, "{e:?}");
    let ours = sim
        .requests()
        .into_iter()
        .find(|r| r.client_id.as_deref() == Some(c.id.as_str()))
        .unwrap();
    assert_eq!(
        asks.find(&out).await,
        Finding::Arrived {
            reference: ours.service_request_id
        },
        "its own request, though the back-end listed every request"
    );
    // A back-end that answers with someone else's request proves nothing.
    sim.set_behaviour(Behaviour {
        lookup_answers_other: true,
        ..Behaviour::default()
    });
    let mut third = case();
    third.id = "0190-third".into();
    assert!(matches!(
        asks.find(&outbound(&third, &to, "0190-third:x")).await,
        Finding::Inconclusive(_)
    ));
    // Without lookups or a promise, nothing can be proved: a person decides.
    assert_eq!(open311(json!({})).proof(), Proof::default());
    assert!(open311(json!({"dedupes_on_id": true})).proof().dedupes);

    // Webhook and email: the other side recognises the resend by the same key.
    let received = Arc::new(Mutex::new(Vec::new()));
    let hook = webhook_subject(received.clone()).await;
    assert!(hook.connector.proof().dedupes);
    hook.connector.deliver(&out).await.unwrap();
    hook.connector.deliver(&out).await.unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0]["idempotency_key"], got[1]["idempotency_key"]);
    let (sink, port) = SmtpSink::start().await;
    let mail = email_subject(sink.clone(), port).await;
    assert!(mail.connector.proof().dedupes);
    mail.connector.deliver(&out).await.unwrap();
    mail.connector.deliver(&out).await.unwrap();
    let ids: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| {
            m.data
                .lines()
                .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], ids[1], "a resend carries the same Message-ID");
}
