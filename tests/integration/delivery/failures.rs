//! A back-end that fails as council systems do: 500s, a refusal, a hang after storing, and
//! answers that are not Open311.

use super::*;

#[tokio::test]
async fn three_500s_then_recovery_delivers_exactly_once() {
    let rig = Rig::start(
        Behaviour {
            fail_next: 3,
            ..Behaviour::default()
        },
        5,
    )
    .await;
    let reference = rig.report(4, 601).await;
    let d = rig.settled(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent);
    assert_eq!(d.attempts, 4);
    let got = rig.sim.requests();
    assert_eq!(got.len(), 1, "one request at the back-end");
    assert_eq!(got[0].posts, 1, "only the successful POST was stored");
    let history = cases::history(rig.server.store(), &d.case_id)
        .await
        .unwrap();
    assert_eq!(
        history
            .iter()
            .filter(|e| e.kind.as_str() == "delivered")
            .count(),
        1
    );
}

#[tokio::test]
async fn a_400_is_dead_at_once_with_the_back_ends_reason_and_a_manager_can_retry() {
    let rig = Rig::start(
        Behaviour {
            fail_next: 1,
            fail_status: Some(400),
            fail_message: Some("Unknown service code for this council".into()),
            ..Behaviour::default()
        },
        5,
    )
    .await;
    let reference = rig.report(12, 701).await;
    let d = rig.settled(&reference, 20).await;
    assert_eq!(d.state, DeliveryState::Dead);
    assert_eq!(d.attempts, 1);
    // The high-priority copy goes whatever the back-end does.
    let mails = eventually(20, "the P1 email", || async {
        let m = rig.smtp.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert!(mails[0].data.contains(&format!("case {reference}")));
    assert!(
        d.last_error
            .as_deref()
            .unwrap()
            .contains("Unknown service code for this council"),
        "{:?}",
        d.last_error
    );
    assert!(d.last_response.as_deref().unwrap().contains("<errors>"));

    // An officer may not retry; a manager may, and it goes through.
    let officer = rig.server.token(&[Role::Officer]);
    let retry = "mutation($id: ID!) { retryDelivery(id: $id) { state } }";
    let (_, body) = rig
        .server
        .gql(Some(&officer), retry, json!({"id": d.id.to_string()}))
        .await;
    assert_eq!(crate::support::code(&body), Some("FORBIDDEN"));
    let manager = rig.server.token(&[Role::Manager]);
    let (_, body) = rig
        .server
        .gql(Some(&manager), retry, json!({"id": d.id.to_string()}))
        .await;
    assert_eq!(data(&body)["retryDelivery"]["state"], "PENDING");
    let d = rig.settled(&reference, 20).await;
    assert_eq!(d.state, DeliveryState::Sent);
}

#[tokio::test]
async fn a_hanging_back_end_times_out_and_the_retry_finds_the_case_instead_of_resending() {
    let rig = Rig::start(
        Behaviour {
            hang_next: 1,
            ..Behaviour::default()
        },
        1,
    )
    .await;
    let reference = rig.report(4, 801).await;
    let d = rig.settled(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent, "{d:?}");
    assert!(d.attempts >= 2);
    let got = rig.sim.requests();
    assert_eq!(got.len(), 1, "no duplicate at the back-end");
    assert_eq!(got[0].posts, 1, "the retry asked instead of posting again");
    assert_eq!(
        d.external_ref.as_deref(),
        Some(got[0].service_request_id.as_str())
    );
}

#[tokio::test]
async fn malformed_answers_are_kept_for_diagnosis_and_retried() {
    let rig = Rig::start(
        Behaviour {
            malformed_next: 1,
            ..Behaviour::default()
        },
        5,
    )
    .await;
    let reference = rig.report(4, 851).await;
    let d = rig.settled(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent);
    assert_eq!(d.attempts, 2);
    let case = cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rig.sim.requests().len(), 1);
    // The failed attempt's raw answer was recorded while it waited.
    let audit = junction_store::audit::list(
        rig.server.store(),
        &junction_store::audit::AuditFilter::default(),
        100,
        None,
    )
    .await
    .unwrap()
    .0;
    assert!(audit.iter().any(|r| {
        r.entry
            .change
            .as_ref()
            .is_some_and(|c| c.object_type == "delivery" && c.action == "deliver")
    }));
    let _ = case;
}
