//! What back-ends push: updates posted over Open311 with a key bound to the back-end's
//! connector, and signed JSON to `/hooks/{connector}`. Each is applied as a polled update is
//! (once, through the connector's status map, never over a newer state, held before its
//! reference), and nothing unauthenticated, stale or half-readable changes anything.

use junction_connectors::xml;
use junction_domain::CaseStatus;
use junction_server::sim::Behaviour;

use super::Rig;
use super::updates_back::UPDATES;

#[tokio::test]
async fn a_back_end_pushes_its_updates_with_its_own_key_and_nothing_else() {
    let rig = Rig::build(None, Behaviour::default(), 5, "", false, UPDATES).await;
    let reference = rig.report(5, 7004).await;
    let delivered = rig.settled(&reference, 20).await;
    let theirs = delivered
        .external_ref
        .clone()
        .expect("the back-end's reference");
    let (_, backend_key) = junction_store::api_keys::create_for_connector(
        rig.server.store(),
        &junction_domain::Actor::internal("test"),
        "council-backend",
        "backend",
    )
    .await
    .unwrap();
    let push = |key: String, form: Vec<(&'static str, String)>| {
        let client = rig.server.client.clone();
        let url = format!("{}/open311/v2/servicerequestupdates.xml", rig.server.base);
        async move {
            let mut form = form;
            form.push(("api_key", key));
            let resp = client.post(url).form(&form).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let update = |id: &str, reference: &str, status: &str, at: &str| {
        vec![
            ("update_id", id.to_string()),
            ("service_request_id", reference.to_string()),
            ("status", status.to_string()),
            ("updated_datetime", at.to_string()),
            ("description", "Inspected on site".to_string()),
        ]
    };
    let now = chrono::Utc::now();
    let at = |mins: i64| {
        (now + chrono::Duration::minutes(mins))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string()
    };

    // The back-end's word, through the connector's map: IN_PROGRESS means investigating here.
    let (status, body) = push(
        backend_key.clone(),
        update("B1", &theirs, "IN_PROGRESS", &at(1)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let first_id = xml::parse(&body)
        .unwrap()
        .child("request_update")
        .unwrap()
        .text_of("update_id")
        .unwrap()
        .to_string();
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);

    // Sent again (the back-end lost the answer): the same id, nothing new.
    let (status, body) = push(
        backend_key.clone(),
        update("B1", &theirs, "IN_PROGRESS", &at(1)),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(&format!("<update_id>{first_id}</update_id>")),
        "{body}"
    );
    let from_backend = |u: &junction_domain::CaseUpdate| u.source == "connector:backend";
    let kept = junction_store::updates::for_case(rig.server.store(), &case.id)
        .await
        .unwrap();
    assert_eq!(kept.iter().filter(|u| from_backend(u)).count(), 1);

    // An older update arriving late is kept but moves nothing.
    let (status, _) = push(backend_key.clone(), update("B0", &theirs, "open", &at(-30))).await;
    assert_eq!(status, 200);
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);

    // A reference not known yet: accepted and held.
    let (status, body) = push(
        backend_key.clone(),
        update("B9", "NOT-YET-1", "fixed", &at(2)),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        junction_store::inbound::held_for(rig.server.store(), "backend")
            .await
            .unwrap()
            .len(),
        1
    );

    // Missing and unreadable arguments are named, in Open311's error list.
    let (status, body) = push(
        backend_key.clone(),
        vec![
            ("service_request_id", theirs.clone()),
            ("updated_datetime", "yesterday".into()),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body.contains("update_id: is required") && body.contains("updated_datetime: `yesterday`"),
        "{body}"
    );

    // A back-end's key does nothing a front-end does.
    let resp = rig
        .server
        .client
        .post(format!("{}/open311/v2/requests.xml", rig.server.base))
        .form(&[
            ("api_key", backend_key.as_str()),
            ("service_code", "POT"),
            ("description", "x"),
            ("lat", "50.71"),
            ("long", "-2.44"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("belongs to the back-end of connector `backend`")
    );

    // A front-end's key on the same path is a citizen's comment: the status stays.
    let (status, body) = push(rig.key.clone(), update("F1", &reference, "FIXED", &at(3))).await;
    assert_eq!(status, 200, "{body}");
    let case = junction_store::cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.status, CaseStatus::Investigating);
}

/// Signs `body` as a back-end holding `secret` does, at Unix time `ts`.
fn signed(secret: &str, ts: i64, body: &str) -> (String, String) {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.{body}").as_bytes());
    (
        ts.to_string(),
        format!("sha256={}", hex::encode(mac.finalize().into_bytes())),
    )
}

#[tokio::test]
async fn signed_pushes_are_applied_once_and_unsigned_stale_or_malformed_ones_change_nothing() {
    let pushed = UPDATES.replace(
        "window_mins = 120\n",
        "window_mins = 120\n  push_secret = \"${JUNCTION_TEST_WEBHOOK_SECRET}\"\n",
    );
    let rig = Rig::build(None, Behaviour::default(), 5, "", false, &pushed).await;
    let reference = rig.report(5, 7006).await;
    let theirs = rig.settled(&reference, 20).await.external_ref.unwrap();
    let url = format!("{}/hooks/backend", rig.server.base);
    let send = |body: String, headers: Option<(String, String)>| {
        let client = rig.server.client.clone();
        let url = url.clone();
        async move {
            let mut req = client.post(url).header("content-type", "application/json");
            if let Some((ts, sig)) = headers {
                req = req
                    .header("x-junction-timestamp", ts)
                    .header("x-junction-signature", sig);
            }
            let resp = req.body(body).send().await.unwrap();
            (resp.status().as_u16(), resp.text().await.unwrap())
        }
    };
    let at = (chrono::Utc::now() + chrono::Duration::minutes(1))
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let body = serde_json::json!({"updates": [
        {"update_id": "H1", "service_request_id": theirs, "status": "in_progress", "updated_datetime": at, "description": "Crew booked"}
    ]})
    .to_string();
    let now = chrono::Utc::now().timestamp();
    let secret = "test-webhook-secret";
    let status_of = || async {
        junction_store::cases::get(rig.server.store(), &reference)
            .await
            .unwrap()
            .unwrap()
            .status
    };

    // Unsigned, signed with another secret, or signed long ago: refused, nothing applied.
    assert_eq!(send(body.clone(), None).await.0, 401);
    assert_eq!(
        send(body.clone(), Some(signed("guess", now, &body)))
            .await
            .0,
        401
    );
    let (status, text) = send(body.clone(), Some(signed(secret, now - 3600, &body))).await;
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("300 s"), "{text}");
    assert_eq!(status_of().await, CaseStatus::Open);

    // Signed: applied through the connector's map; sent again, a repeat.
    let (status, text) = send(body.clone(), Some(signed(secret, now, &body))).await;
    assert_eq!(status, 200, "{text}");
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["results"][0]["outcome"], "applied");
    assert_eq!(status_of().await, CaseStatus::Investigating);
    let (_, text) = send(body.clone(), Some(signed(secret, now, &body))).await;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["results"][0]["outcome"], "repeat");

    // One unreadable update refuses the whole body: the good one beside it is not applied.
    let mixed = serde_json::json!({"updates": [
        {"update_id": "H2", "service_request_id": theirs, "status": "fixed", "updated_datetime": at},
        {"update_id": "H3", "service_request_id": theirs, "updated_datetime": "soon"}
    ]})
    .to_string();
    let (status, text) = send(mixed.clone(), Some(signed(secret, now, &mixed))).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("updates[1].updated_datetime"), "{text}");
    assert_eq!(status_of().await, CaseStatus::Investigating);

    // A connector that takes no pushes is not there.
    let other = format!("{}/hooks/smtp", rig.server.base);
    let resp = rig
        .server
        .client
        .post(other)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
