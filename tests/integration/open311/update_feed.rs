//! Service request updates: the feed FixMyStreet polls, and updates it posts, each taken once.

use super::*;

#[tokio::test]
async fn updates_go_out_in_their_window_and_come_in_once() {
    let o = Open311::start().await;
    let (_, body) = o.post_form("requests.xml", &fms_report(&o.key, "4")).await;
    let id = parse(&body)
        .child("request")
        .unwrap()
        .text_of("service_request_id")
        .unwrap()
        .to_string();

    // An officer's status change is an update FixMyStreet can fetch.
    let officer = o
        .server
        .token_for("olive", Some("highways"), &[Role::Officer]);
    let (status, resp) = o
        .server
        .gql(
            Some(&officer),
            r#"mutation($id: ID!) { changeCaseStatus(id: $id, status: IN_PROGRESS) { status } }"#,
            json!({"id": id}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");

    let now = chrono::Utc::now();
    let key = o.key.clone();
    let window_as = |key: &str,
                     from: chrono::DateTime<chrono::Utc>,
                     to: chrono::DateTime<chrono::Utc>| {
        format!(
            "servicerequestupdates.xml?jurisdiction_id=borsetshire&api_key={key}&start_date={}&end_date={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let window = |from, to| window_as(&key, from, to);
    // FixMyStreet polls with `api_key=` always present, empty when it has no key: answered,
    // but the front-end's own id for the case is that front-end's alone.
    let (status, body) = o
        .get(&window_as(
            "",
            now - chrono::Duration::hours(2),
            now + chrono::Duration::minutes(1),
        ))
        .await;
    assert_eq!(status, 200, "an empty api_key is anonymous: {body}");
    let anonymous = parse(&body);
    let update = anonymous.child("request_update").expect("one update");
    assert_eq!(update.text_of("service_request_id"), Some(id.as_str()));
    assert_eq!(update.text_of("fixmystreet_id"), None);
    let (status, body) = o
        .get(&window(
            now - chrono::Duration::hours(2),
            now + chrono::Duration::minutes(1),
        ))
        .await;
    assert_eq!(status, 200, "FixMyStreet polls with its key: {body}");
    let root = parse(&body);
    assert_has_spec_elements(&root, "get_servicerequestupdates.response.xml");
    let update = root.child("request_update").expect("one update");
    assert_eq!(update.text_of("service_request_id"), Some(id.as_str()));
    assert_eq!(update.text_of("status"), Some("in_progress"));
    assert_eq!(update.text_of("fixmystreet_id"), Some("4242"));
    assert_ne!(update.text_of("update_id"), Some("0"));
    let stamp = update.text_of("updated_datetime").unwrap();
    assert!(stamp.ends_with('Z') && !stamp.contains('.'), "{stamp}");

    // Outside the window: nothing.
    let (_, body) = o
        .get(&window(
            now - chrono::Duration::hours(5),
            now - chrono::Duration::hours(3),
        ))
        .await;
    assert_eq!(parse(&body).children("request_update").count(), 0);
    let (status, _) = o.get(&window(now - chrono::Duration::days(91), now)).await;
    assert_eq!(status, 400, "a window over 90 days is refused");

    // The mySociety extension's own update post, with our reference.
    let sample = std::fs::read_to_string(format!(
        "{}/fixtures/open311/post_servicerequestupdates.request.form",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let body = sample
        .trim()
        .replace("api_key=test", &format!("api_key={}", o.key))
        .replace(
            "service_request_id=1001",
            &format!("service_request_id={id}"),
        );
    let (status, text) = o
        .post_raw(
            "servicerequestupdates.json",
            "application/x-www-form-urlencoded",
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert!(json[0]["update_id"].as_str().is_some_and(|s| s != "0"));
    let stored = updates::for_case(
        o.server.store(),
        &cases::get(o.server.store(), &id).await.unwrap().unwrap().id,
    )
    .await
    .unwrap();
    let posted = stored
        .iter()
        .find(|u| u.source == "open311:fixmystreet")
        .unwrap();
    assert_eq!(posted.description, "Update here");
    assert_eq!(posted.source_update_id.as_deref(), Some("123"));
    // The same update again (FixMyStreet lost the answer): answered with the stored update's
    // id, nothing added (issue 18 item 3).
    let (status, text) = o
        .post_raw(
            "servicerequestupdates.json",
            "application/x-www-form-urlencoded",
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again[0]["update_id"], json[0]["update_id"]);
    let count = |o: &Open311| {
        let store = o.server.store().clone();
        let id = id.clone();
        async move {
            let case = cases::get(&store, &id).await.unwrap().unwrap();
            updates::for_case(&store, &case.id).await.unwrap().len()
        }
    };
    assert_eq!(count(&o).await, stored.len(), "nothing added");
    // The same update id with other content is refused.
    let changed = body.replace("Update+here", "Something+else");
    assert_ne!(
        changed, body,
        "the fixture's text is form-encoded as expected"
    );
    let (status, text) = o
        .post_raw(
            "servicerequestupdates.xml",
            "application/x-www-form-urlencoded",
            changed.into_bytes(),
        )
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("already exists with other content"), "{text}");
    assert_eq!(count(&o).await, stored.len());
    // A client polling with its key is not sent its own update back.
    let (_, body) = o
        .get(&format!(
            "servicerequestupdates.xml?api_key={}&start_date=2016-08-01T00:00:00Z&end_date=2016-10-01T00:00:00Z",
            o.key
        ))
        .await;
    assert_eq!(parse(&body).children("request_update").count(), 0);
    // Missing fields are each named.
    let (status, text) = o
        .post_form(
            "servicerequestupdates.xml",
            &[("api_key", &o.key), ("service_request_id", &id)],
        )
        .await;
    assert_eq!(status, 400);
    for field in ["update_id", "status", "updated_datetime", "description"] {
        assert!(
            text.contains(&format!("{field}: is required")),
            "{field}: {text}"
        );
    }
}
