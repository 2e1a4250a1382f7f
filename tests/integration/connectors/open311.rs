//! Open311 under the conformance suite: the simulator as its peer, and what only Open311 does
//! (a service list that must be Open311's, finding a request by our id).

use junction_connectors::{ConnectorKind, ConnectorParams, build};
use junction_domain::{Finding, Proof};
use junction_server::sim::{Behaviour, Simulator};
use serde_json::{Value, json};

use super::{Peer, Subject, case, deliverer, outbound};
use crate::support::init;

fn params(base: &str, extra: Value) -> ConnectorParams {
    let mut params = json!({"endpoint": base, "api_key": "${K}", "timeout_secs": 1});
    params
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    ConnectorParams::parse(ConnectorKind::Open311, params, &mut |_| {}).unwrap()
}

/// A connector that looks requests up by our id, and the simulator behind it.
pub(super) async fn subject() -> Subject {
    let sim = Simulator::new(Behaviour::default());
    let (addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}/open311/v2/");
    let caps = build(&params(&base, json!({"lookup_by_id": true})), &|_| {
        Ok("key".to_string())
    })
    .unwrap();
    let seen = sim.clone();
    Subject {
        name: "open311",
        connector: deliverer(caps.clone()),
        base: caps.base,
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
                Peer::Garble => Behaviour {
                    malformed_next: 1,
                    ..Behaviour::default()
                },
            })
        }),
        nobody_at: |port| params(&format!("http://127.0.0.1:{port}/open311/v2/"), json!({})),
        keys_seen: Box::new(move || seen.arrivals()),
    }
}

#[tokio::test]
async fn a_service_list_that_is_not_open311_is_unhealthy() {
    init();
    // An endpoint that answers its service list with an HTML error page, as a proxy does.
    let app = axum::Router::new().route(
        "/open311/v2/services.xml",
        axum::routing::get(|| async {
            "<html><body>Service temporarily unavailable</body></html>"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let html = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let p = params(&format!("http://{html}/open311/v2/"), json!({}));
    let caps = build(&p, &|_| Ok("x".to_string())).unwrap();
    let health = caps.base.health_check().await;
    assert!(!health.is_healthy(), "{health:?}");
}

/// Finding a request proves only what is exactly ours: never from someone else's record, and
/// a connector without lookups or a promise proves nothing.
#[tokio::test]
async fn a_lookup_finds_only_our_own_request() {
    init();
    let c = case();
    let to = vec!["highways@borsetshire.example".to_string()];
    let out = outbound(&c, &to, "0190-case:x");
    let sim = Simulator::new(Behaviour {
        ignore_unknown_filters: true,
        ..Behaviour::default()
    });
    let (addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let base = format!("http://{addr}/open311/v2/");
    let open311 =
        |extra: Value| deliverer(build(&params(&base, extra), &|_| Ok("key".to_string())).unwrap());
    let asks = open311(json!({"lookup_by_id": true}));
    assert!(asks.proof().can_ask && !asks.proof().dedupes);
    assert_eq!(asks.find(&out).await, Finding::Absent, "nothing there yet");
    let mut other = case();
    other.id = "0190-other".into();
    asks.deliver(&outbound(&other, &to, "0190-other:x"))
        .await
        .unwrap();
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
}
