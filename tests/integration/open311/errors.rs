//! Bad input: the spec's error body with the right status, and nothing created.

use super::*;

#[tokio::test]
async fn bad_input_gets_the_specs_errors_and_creates_nothing() {
    let o = Open311::start().await;
    let long = "x".repeat(20_001);
    let key = o.key.clone();
    let with = |changes: &[(&'static str, &str)]| -> Vec<(String, String)> {
        let mut form: Vec<(String, String)> = fms_report(&key, "12")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in changes {
            form.retain(|(fk, _)| fk != k);
            if !v.is_empty() {
                form.push((k.to_string(), v.to_string()));
            }
        }
        form
    };
    /// A case of bad input: its name, the form sent, the status and text expected.
    type BadInput = (&'static str, Vec<(String, String)>, u16, &'static str);
    let table: Vec<BadInput> = vec![
        (
            "no key",
            with(&[("api_key", "")]),
            403,
            "api_key: is required",
        ),
        (
            "wrong key",
            with(&[("api_key", "jk_wrong")]),
            403,
            "api_key: is not valid",
        ),
        (
            "unknown service",
            with(&[("service_code", "NOPE")]),
            400,
            "service_code: `NOPE`",
        ),
        (
            "no service",
            with(&[("service_code", "")]),
            400,
            "service_code: is required",
        ),
        (
            "missing required",
            with(&[("attribute[depth_cm]", "")]),
            400,
            "attribute[depth_cm]: is required",
        ),
        (
            "outside its list",
            with(&[("attribute[road_type]", "sky")]),
            400,
            "attribute[road_type]: `sky` is not one of",
        ),
        (
            "not a number",
            with(&[("attribute[depth_cm]", "deep")]),
            400,
            "attribute[depth_cm]: `deep` is not a number",
        ),
        (
            "bad latitude",
            with(&[("lat", "north")]),
            400,
            "lat: `north` is not a number",
        ),
        (
            "latitude out of range",
            with(&[("lat", "95")]),
            400,
            "lat: must be between -90 and 90",
        ),
        (
            "no location",
            with(&[("lat", ""), ("long", ""), ("attribute[uprn]", "")]),
            400,
            "lat/long, address_string or address_id",
        ),
        (
            "description too long",
            with(&[("description", &long)]),
            400,
            "description: is 20001 characters long",
        ),
        (
            "bad email",
            with(&[("email", "not-an-address")]),
            400,
            "email: is not an email address",
        ),
        (
            "unknown jurisdiction",
            with(&[("jurisdiction_id", "elsewhere")]),
            404,
            "jurisdiction_id `elsewhere`",
        ),
    ];
    let before = audit::count(o.server.store()).await.unwrap();
    for (name, form, want_status, want_text) in &table {
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let (status, body) = o.post_form("requests.xml", &pairs).await;
        assert_eq!(status, *want_status, "{name}: {body}");
        let errors = parse(&body);
        assert_eq!(errors.name, "errors", "{name}");
        let descriptions: Vec<&str> = errors
            .children("error")
            .filter_map(|e| e.text_of("description"))
            .collect();
        assert!(
            descriptions.iter().any(|d| d.contains(want_text)),
            "{name}: {descriptions:?}"
        );
        let code = want_status.to_string();
        assert!(
            errors
                .children("error")
                .all(|e| e.text_of("code") == Some(code.as_str()))
        );
    }
    // Every problem in one document, as FixMyStreet reads it.
    let form = with(&[
        ("attribute[depth_cm]", "deep"),
        ("attribute[road_type]", "sky"),
        ("email", "x"),
    ]);
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let (status, body) = o.post_form("requests.xml", &pairs).await;
    assert_eq!(status, 400);
    insta::assert_snapshot!("several_problems_xml", body);
    // JSON errors are a bare array.
    let (status, body) = o
        .post_form("requests.json", &[("service_code", "POT")])
        .await;
    assert_eq!(status, 403);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json[0]["code"], 403);
    insta::assert_json_snapshot!("no_key_json", json);
    // A body that is neither form nor multipart.
    let (status, body) = o
        .post_raw("requests.xml", "application/xml", b"<request/>".to_vec())
        .await;
    assert_eq!(status, 400, "{body}");

    let page = cases::list(o.server.store(), &Default::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(page.total, 0, "no case was created");
    let after = audit::count(o.server.store()).await.unwrap();
    assert_eq!(
        after - before,
        table.len() as u64 + 3,
        "one audit record per call"
    );
    let (records, _) = audit::list(o.server.store(), &Default::default(), 1, None)
        .await
        .unwrap();
    let op = records[0].entry.operation.as_ref().unwrap();
    assert_eq!(op.operation_type, "open311");
    assert_eq!(op.outcome, "rejected");
    // Each refusal is recorded with the outcome its code has on every surface: the caller's
    // fault is `rejected`, a case that is not there an `error`, as GraphQL records them.
    let (records, _) = audit::list(o.server.store(), &Default::default(), 200, None)
        .await
        .unwrap();
    let mut seen_not_found = false;
    for r in &records {
        let Some(op) = r.entry.operation.as_ref() else {
            continue;
        };
        let code = op
            .error_code
            .as_deref()
            .and_then(junction_api::ErrorCode::parse);
        assert_eq!(op.outcome, code.map_or("ok", |c| c.outcome()), "{op:?}");
        seen_not_found |= code == Some(junction_api::ErrorCode::NotFound);
    }
    assert!(seen_not_found, "the table has a 404");
}
