//! Exactly once against back-ends that behave as council systems do: they store every POST
//! (no de-duplication), hang after storing, ignore filters they do not know, and answer a
//! lookup with someone else's request. An unanswered attempt is never resent blindly and
//! never marked sent on a guess: it is proved, resent to a back-end that promised to
//! de-duplicate, or parked for a manager to decide.

use junction_domain::{DeliveryKind, DeliveryState, Role};
use junction_server::sim::{Behaviour, Simulator};
use junction_store::api_keys;
use junction_store::deliveries::{self, Delivery};
use serde_json::json;

use crate::support::{TestServer, code, data, eventually};

struct Rig {
    server: TestServer,
    sim: Simulator,
    key: String,
}

impl Rig {
    /// Junction delivering potholes to a simulated back-end behaving as `behaviour`, through an
    /// Open311 connector with `params` (TOML lines) and a 1 s timeout.
    async fn start(behaviour: Behaviour, params: &str) -> Rig {
        let sim = Simulator::new(behaviour);
        let (addr, _task) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let config = format!(
            r#"
[[connectors]]
id = "backend"
kind = "open311"
retry = {{ initial_secs = 1, max_delay_secs = 1, max_age_hours = 1, checks = 3, jitter = 0.0 }}
  [connectors.params]
  endpoint = "http://{addr}/open311/v2/"
  api_key = "${{JUNCTION_TEST_BACKEND_KEY}}"
  timeout_secs = 1
  {params}

[[routes]]
name = "potholes to the back-end"
case_types = ["POT"]
set = {{ connector = "backend" }}
"#
        );
        let server = TestServer::start(&config).await;
        let (_, key) = api_keys::create(
            server.store(),
            &junction_domain::Actor::internal("test"),
            "fixmystreet",
            None,
        )
        .await
        .unwrap();
        Rig { server, sim, key }
    }

    /// Posts a report as FixMyStreet does; returns Junction's reference.
    async fn report(&self, n: u32) -> String {
        let id = n.to_string();
        let form = [
            ("api_key", self.key.as_str()),
            ("service_code", "POT"),
            ("description", "a deep one"),
            ("lat", "50.710000"),
            ("long", "-2.440000"),
            ("attribute[depth_cm]", "4"),
            ("attribute[road_type]", "carriageway"),
            ("attribute[fixmystreet_id]", id.as_str()),
        ];
        let resp = self
            .server
            .client
            .post(format!("{}/open311/v2/requests.xml", self.server.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        crate::support::service_request_id(&resp.text().await.unwrap())
    }

    async fn delivery(&self, reference: &str) -> Delivery {
        crate::support::deliveries_of(self.server.store(), reference)
            .await
            .into_iter()
            .find(|d| d.kind == DeliveryKind::Case)
            .unwrap()
    }

    /// Waits until the case's delivery is sent, dead, or waiting for a person.
    async fn at_rest(&self, reference: &str, secs: u64) -> Delivery {
        eventually(secs, "the delivery to come to rest", || async {
            let d = self.delivery(reference).await;
            (d.state.is_final() || d.state == DeliveryState::NeedsDecision).then_some(d)
        })
        .await
    }

    /// How many requests the back-end holds for `case_id`.
    fn copies(&self, case_id: &str) -> usize {
        self.sim.copies().get(case_id).copied().unwrap_or(0)
    }

    /// The reference the back-end gave the request it holds for `case_id`.
    fn backend_ref(&self, case_id: &str) -> String {
        self.sim
            .requests()
            .into_iter()
            .find(|r| r.client_id.as_deref() == Some(case_id))
            .map(|r| r.service_request_id)
            .unwrap()
    }
}

const RESOLVE: &str = "mutation($id: ID!, $o: DeliveryResolution!, $r: String) { \
     resolveDelivery(id: $id, outcome: $o, reference: $r) { state externalRef } }";

#[tokio::test]
async fn a_hang_after_storing_with_no_way_to_ask_is_parked_and_a_manager_decides() {
    // No lookup, no promise of de-duplication: nothing can prove what happened.
    let rig = Rig::start(
        Behaviour {
            hang_next: 1,
            ..Behaviour::default()
        },
        "",
    )
    .await;
    let reference = rig.report(9001).await;
    let d = rig.at_rest(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::NeedsDecision, "{d:?}");
    assert!(
        d.last_error.as_deref().unwrap().contains("dedupes_on_id"),
        "the reason names what would let Junction decide: {d:?}"
    );
    assert!(d.ambiguous_since.is_some());
    assert_eq!(rig.copies(&d.case_id), 1, "never resent blindly");
    assert!(d.external_ref.is_none(), "never marked sent on a guess");

    // Visible on the case's history and the connector's health.
    let officer = rig.server.token(&[Role::Officer]);
    let (_, body) = rig
        .server
        .gql(
            Some(&officer),
            r#"query($r: ID!) { connectors { id health { needsDecision ambiguous } }
                case(id: $r) { history { kind } deliveries { id state } } }"#,
            json!({"r": reference}),
        )
        .await;
    let backend = &data(&body)["connectors"][0];
    assert_eq!(backend["health"]["needsDecision"], 1, "{body}");
    let kinds: Vec<&str> = data(&body)["case"]["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["kind"].as_str())
        .collect();
    assert!(kinds.contains(&"DELIVERY_NEEDS_DECISION"), "{kinds:?}");
    let id = d.id.to_string();

    // An officer may not decide; a manager may, and the decision is audited.
    let (_, refused) = rig
        .server
        .gql(
            Some(&officer),
            RESOLVE,
            json!({"id": id, "o": "ARRIVED", "r": "x"}),
        )
        .await;
    assert_eq!(code(&refused), Some("FORBIDDEN"), "{refused}");
    let manager = rig.server.token(&[Role::Manager]);
    let held = rig.backend_ref(&d.case_id);
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            RESOLVE,
            json!({"id": id, "o": "ARRIVED", "r": held}),
        )
        .await;
    assert_eq!(data(&body)["resolveDelivery"]["state"], "SENT", "{body}");
    assert_eq!(data(&body)["resolveDelivery"]["externalRef"], held.as_str());
    let refs = deliveries::external_refs(rig.server.store(), &d.case_id)
        .await
        .unwrap();
    assert_eq!(refs, vec![("backend".to_string(), held.clone())]);
    let filter = junction_store::audit::AuditFilter {
        object_type: Some("delivery".into()),
        object_id: Some(id.clone()),
        ..Default::default()
    };
    let (trail, _) = junction_store::audit::list(rig.server.store(), &filter, 50, None)
        .await
        .unwrap();
    assert!(
        trail.iter().any(|e| e.entry.actor == "tester"
            && e.entry
                .change
                .as_ref()
                .is_some_and(|c| c.action == "resolve_arrived")),
        "{trail:?}"
    );
    // Deciding twice is a conflict, not a second record.
    let (_, again) = rig
        .server
        .gql(
            Some(&manager),
            RESOLVE,
            json!({"id": id, "o": "SEND_AGAIN"}),
        )
        .await;
    assert_eq!(code(&again), Some("CONFLICT"), "{again}");
    assert_eq!(rig.copies(&d.case_id), 1);
}

#[tokio::test]
async fn send_again_is_a_managers_decision_and_then_delivers_once() {
    let rig = Rig::start(
        Behaviour {
            // Refused before anything is stored, then an answer that never comes: the first
            // POST times out without the back-end holding the case.
            delay_ms: 2_500,
            ..Behaviour::default()
        },
        "",
    )
    .await;
    let reference = rig.report(9002).await;
    let d = rig.at_rest(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::NeedsDecision, "{d:?}");
    rig.sim.set_behaviour(Behaviour::default());
    let manager = rig.server.token(&[Role::Manager]);
    let (_, bad) = rig
        .server
        .gql(
            Some(&manager),
            RESOLVE,
            json!({"id": d.id.to_string(), "o": "SEND_AGAIN", "r": "SIM-1"}),
        )
        .await;
    assert_eq!(code(&bad), Some("BAD_USER_INPUT"), "{bad}");
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            RESOLVE,
            json!({"id": d.id.to_string(), "o": "SEND_AGAIN"}),
        )
        .await;
    assert_eq!(data(&body)["resolveDelivery"]["state"], "PENDING", "{body}");
    let d = rig.at_rest(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent, "{d:?}");
    // The slow first POST may or may not have been stored in the end; the decision to send
    // again was the manager's, and the reference recorded is that of the request answered.
    assert_eq!(
        d.external_ref.as_deref(),
        rig.sim
            .requests()
            .iter()
            .rev()
            .find(|r| r.client_id.as_deref() == Some(d.case_id.as_str()))
            .map(|r| r.service_request_id.as_str())
    );
}

#[tokio::test]
async fn a_lookup_that_ignores_the_filter_still_finds_only_our_own_request() {
    let rig = Rig::start(
        Behaviour {
            ignore_unknown_filters: true,
            ..Behaviour::default()
        },
        "lookup_by_id = true",
    )
    .await;
    // Other cases at the back-end first, so an ignored filter lists them all.
    let mut others = Vec::new();
    for n in 0..4 {
        others.push(rig.report(9100 + n).await);
    }
    for r in &others {
        assert_eq!(rig.at_rest(r, 30).await.state, DeliveryState::Sent);
    }
    rig.sim.set_behaviour(Behaviour {
        ignore_unknown_filters: true,
        hang_next: 1,
        ..Behaviour::default()
    });
    let reference = rig.report(9110).await;
    let d = rig.at_rest(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent, "{d:?}");
    assert!(d.attempts >= 2);
    assert_eq!(rig.copies(&d.case_id), 1, "found, not resent");
    assert_eq!(
        d.external_ref.as_deref(),
        Some(rig.backend_ref(&d.case_id).as_str()),
        "its own reference, not the first in the list"
    );
}

#[tokio::test]
async fn a_lookup_answered_with_someone_elses_request_never_counts() {
    let rig = Rig::start(
        Behaviour {
            lookup_answers_other: true,
            ..Behaviour::default()
        },
        "lookup_by_id = true",
    )
    .await;
    let other = rig.report(9200).await;
    let other_ref = rig.at_rest(&other, 30).await.external_ref.unwrap();
    rig.sim.set_behaviour(Behaviour {
        lookup_answers_other: true,
        hang_next: 1,
        ..Behaviour::default()
    });
    let reference = rig.report(9201).await;
    let d = rig.at_rest(&reference, 60).await;
    assert_eq!(d.state, DeliveryState::NeedsDecision, "{d:?}");
    assert!(
        d.last_error.as_deref().unwrap().contains("3 checks"),
        "{d:?}"
    );
    assert_ne!(d.external_ref, Some(other_ref), "never someone else's");
    assert!(d.external_ref.is_none());
    assert_eq!(rig.copies(&d.case_id), 1, "never resent on a guess");
}

#[tokio::test]
async fn a_back_end_that_promises_to_de_duplicate_gets_the_resend() {
    let rig = Rig::start(
        Behaviour {
            dedupe: true,
            hang_next: 1,
            ..Behaviour::default()
        },
        "dedupes_on_id = true",
    )
    .await;
    let reference = rig.report(9300).await;
    let d = rig.at_rest(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent, "{d:?}");
    let held = rig.sim.requests();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].posts, 2, "resent, and the back-end kept one");
    assert_eq!(
        d.external_ref.as_deref(),
        Some(held[0].service_request_id.as_str())
    );
}
