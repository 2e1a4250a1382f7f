//! Reports as FixMyStreet posts them and the spec samples them: routed, stored and read back.

use super::*;

#[tokio::test]
async fn a_fixmystreet_report_is_routed_and_readable() {
    let o = Open311::start().await;
    let (status, body) = o.post_form("requests.xml", &fms_report(&o.key, "12")).await;
    assert_eq!(status, 200, "{body}");
    let root = parse(&body);
    let id = root
        .child("request")
        .and_then(|r| r.text_of("service_request_id"))
        .expect("an id, as FixMyStreet requires")
        .to_string();
    assert_ne!(id, "0");

    let case = cases::get(o.server.store(), &id).await.unwrap().unwrap();
    assert_eq!(case.source_ref.as_deref(), Some("4242"));
    assert_eq!(case.location.uprn.as_deref(), Some("100023336956"));
    assert_eq!(case.submitter.name.as_deref(), Some("Test User"));
    assert_eq!(case.fields["depth_cm"], json!(12));
    let route = case.route.clone().unwrap();
    assert_eq!(route.rules, ["deep is P1"]);
    assert_eq!(route.priority.as_deref(), Some("P1"));
    assert_eq!(route.connector.as_deref(), Some("smtp"));

    // Committed with the case: the case to highways by email, and the P1 copy.
    let ds = deliveries::for_case(o.server.store(), &case.id)
        .await
        .unwrap();
    // The P1 copy may already be on its way: workers run in this server too.
    let summary: Vec<_> = ds
        .iter()
        .map(|d| {
            let state = match d.state {
                DeliveryState::Sending | DeliveryState::Failed | DeliveryState::Sent => {
                    DeliveryState::Pending
                }
                other => other,
            };
            (d.kind, state, d.connector_id.as_str())
        })
        .collect();
    assert_eq!(
        summary,
        [
            (DeliveryKind::Case, DeliveryState::Dead, "smtp"),
            (DeliveryKind::AlsoEmail, DeliveryState::Pending, "smtp"),
        ],
        "highways has no email address, so its copy cannot go: {ds:?}"
    );
    assert!(
        ds[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("no email address")
    );
    assert_eq!(ds[1].payload.to, ["p1@borsetshire.example"]);

    // The history names the rule that fired.
    let history = cases::history(o.server.store(), &case.id).await.unwrap();
    let routed = history
        .iter()
        .find(|e| e.kind.as_str() == "routed")
        .unwrap();
    assert_eq!(routed.data["route"]["rules"], json!(["deep is P1"]));

    let (status, body) = o.get(&format!("requests/{id}.xml")).await;
    assert_eq!(status, 200);
    let root = parse(&body);
    assert_has_spec_elements(&root, "get_requests.response.xml");
    let req = root.child("request").unwrap();
    assert_eq!(req.text_of("service_request_id"), Some(id.as_str()));
    assert_eq!(req.text_of("status"), Some("open"));
    assert_eq!(req.text_of("service_code"), Some("POT"));
    assert!(
        !body.contains("test@example.com"),
        "no personal data: {body}"
    );
    let requested = req.text_of("requested_datetime").unwrap();
    assert!(
        requested.ends_with('Z') && !requested.contains('.'),
        "W3C, zoned, whole seconds: {requested}"
    );

    let (status, body) = o
        .get(&format!("requests.json?service_request_id={id},999999"))
        .await;
    assert_eq!(status, 200);
    let list: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["service_request_id"], json!(id));

    let (status, body) = o.get("requests.xml?service_code=POT&status=open").await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body).children("request").count(), 1);
    let (_, body) = o.get("requests.xml?status=closed").await;
    assert_eq!(parse(&body).children("request").count(), 0);

    // The token answer has the spec's shape (tests/fixtures/open311/get_token.response.xml).
    let (status, body) = o.get(&format!("tokens/{}.xml", case.id)).await;
    assert_eq!(status, 200);
    let spec = std::fs::read_to_string(format!(
        "{}/fixtures/open311/get_token.response.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let (ours, theirs) = (parse(&body), parse(&spec));
    assert_eq!(ours.name, theirs.name);
    let request = ours.child("request").expect("<service_requests><request>");
    assert_eq!(request.text_of("service_request_id"), Some(id.as_str()));
    assert_eq!(request.text_of("token"), Some(case.id.as_str()));
    let names = |e: &junction_connectors::xml::Element| -> Vec<String> {
        e.children.iter().map(|c| c.name.clone()).collect()
    };
    assert_eq!(names(request), names(theirs.child("request").unwrap()));
    let (status, _) = o.get("requests/999999.xml").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn the_specs_own_post_and_multipart_are_accepted() {
    let o = Open311::start().await;
    let sample = std::fs::read_to_string(format!(
        "{}/fixtures/open311/post_request.request.http",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let body = sample
        .split("\n\n")
        .nth(1)
        .unwrap()
        .trim()
        .replace("api_key=xyz", &format!("api_key={}", o.key))
        .replace("jurisdiction_id=city.gov", "jurisdiction_id=borsetshire");
    let (status, text) = o
        .post_raw(
            "requests.json",
            "application/x-www-form-urlencoded; charset=utf-8",
            body.into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    let id = json[0]["service_request_id"].as_str().unwrap().to_string();
    assert_eq!(json[0]["account_id"], "123456");
    let case = cases::get(o.server.store(), &id).await.unwrap().unwrap();
    assert_eq!(case.fields["WHISPAWN"], json!("123456"));
    assert_eq!(case.location.address.as_deref(), Some("1234 5th street"));

    // Multipart, as FixMyStreet posts when it uploads photos; the file part is not an argument.
    let body = multipart(
        &fms_report(&o.key, "3"),
        &[("photo1", "1.0.full.jpeg", "image/jpeg", &[1, 2, 3])],
    );
    let (status, text) = o.post_multipart("requests.xml", body).await;
    assert_eq!(status, 200, "{text}");
    let id = parse(&text)
        .child("request")
        .unwrap()
        .text_of("service_request_id")
        .unwrap()
        .to_string();
    let case = cases::get(o.server.store(), &id).await.unwrap().unwrap();
    assert_eq!(case.fields["depth_cm"], json!(3));
    assert!(
        case.route.unwrap().rules.is_empty(),
        "a shallow pothole fires no rule"
    );
}

#[tokio::test]
async fn jurisdiction_id_is_needed_only_when_there_are_several() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("two.db").display());
    let config = r#"
[[jurisdictions]]
id = "borsetshire"
name = "Borsetshire Council"

[[jurisdictions]]
id = "felpersham"
name = "Felpersham City Council"

[[agencies]]
id = "highways"
jurisdiction = "borsetshire"
name = "Highways"
kind = "department"

[[case_types]]
code = "POT"
jurisdiction = "borsetshire"
name = "Pothole"
agency = "highways"
published = true
"#;
    let o = Open311::with_server(TestServer::start_on(&url, config).await).await;
    let (status, body) = o.get("services.xml").await;
    assert_eq!(status, 400);
    assert!(body.contains("jurisdiction_id: is required"), "{body}");
    let (status, body) = o.get("services.xml?jurisdiction_id=felpersham").await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body).children("service").count(), 0);
    let (status, body) = o.get("services.xml?jurisdiction_id=borsetshire").await;
    assert_eq!(status, 200);
    assert_eq!(parse(&body).children("service").count(), 1);
}
