//! What FixMyStreet really sends, taken in whole: its wrapped descriptions, longer than any
//! form lets a person type, and its photos by address (`media_url`), kept and shown.

use super::*;

/// FixMyStreet's `extended_description` wrapper around a citizen's long text.
fn wrapped(detail_chars: usize) -> String {
    format!(
        "title: Blocked drain on the High Street\r\n\r\ndetail: {}\r\n\r\nurl: https://www.fixmystreet.com/report/788301\r\n\r\nSubmitted via FixMyStreet\r\n",
        "The drain is blocked and water pools across the road. ".repeat(detail_chars / 55 + 1)
    )
}

#[tokio::test]
async fn long_wrapped_descriptions_are_taken_in_within_each_case_types_limit() {
    let o = Open311::start_with(
        r#"
[[case_types]]
code = "SHORT"
name = "Short form"
agency = "highways"
published = true
max_description_chars = 100
"#,
    )
    .await;
    let description = wrapped(3_950);
    assert!(description.chars().count() > 4_000, "over the old limit");
    let mut form = fms_report(&o.key, "4");
    for (k, v) in form.iter_mut() {
        if *k == "description" {
            *v = description.as_str();
        }
    }
    let (status, body) = o.post_form("requests.xml", &form).await;
    assert_eq!(status, 200, "{body}");
    let reference = parse(&body)
        .child("request")
        .and_then(|r| r.text_of("service_request_id"))
        .unwrap()
        .to_string();
    let case = cases::get(o.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.description, description.trim(), "kept whole");

    // A case type's own limit is enforced, named in the spec's error body.
    let (status, body) = o
        .post_form(
            "requests.xml",
            &[
                ("api_key", &o.key),
                ("service_code", "SHORT"),
                ("description", &"y".repeat(101)),
                ("lat", "50.71"),
                ("long", "-2.44"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let error = parse(&body);
    assert_eq!(
        error.child("error").and_then(|e| e.text_of("description")),
        Some("description: is 101 characters long, more than the 100 allowed")
    );
}

#[tokio::test]
async fn photos_sent_by_address_are_kept_shown_and_bad_ones_refused() {
    let o = Open311::start().await;
    let first = "https://www.fixmystreet.com/photo/788301.0.full.jpeg?a1b2c3";
    let second = "https://www.fixmystreet.com/photo/788301.1.full.jpeg?a1b2c3";
    // `multi_photos`: the key repeated.
    let mut form: Vec<(&str, &str)> = fms_report(&o.key, "4")
        .into_iter()
        .filter(|(k, _)| *k != "media_url")
        .collect();
    form.push(("media_url", first));
    form.push(("media_url", second));
    let (status, body) = o.post_form("requests.xml", &form).await;
    assert_eq!(status, 200, "{body}");
    let reference = parse(&body)
        .child("request")
        .and_then(|r| r.text_of("service_request_id"))
        .unwrap()
        .to_string();

    // `GET requests` shows the first, where the spec has one, to the front-end that sent it.
    let (_, body) = o
        .get(&format!("requests/{reference}.xml?api_key={}", o.key))
        .await;
    assert_eq!(
        parse(&body)
            .child("request")
            .and_then(|r| r.text_of("media_url")),
        Some(first),
        "{body}"
    );
    // GraphQL shows them all to staff.
    let officer = o
        .server
        .token_for("olive", Some("highways"), &[Role::Officer]);
    let (_, resp) = o
        .server
        .gql(
            Some(&officer),
            "query($id: ID!) { case(id: $id) { mediaUrls } }",
            json!({"id": reference}),
        )
        .await;
    assert_eq!(data(&resp)["case"]["mediaUrls"], json!([first, second]));

    // An address that is not a web URL is refused, named as the field FixMyStreet sent.
    for bad in [
        "javascript:alert(1)",
        "file:///etc/passwd",
        "https:///nohost",
    ] {
        let mut form: Vec<(&str, &str)> = fms_report(&o.key, "4")
            .into_iter()
            .filter(|(k, _)| *k != "media_url" && *k != "attribute[fixmystreet_id]")
            .collect();
        form.push(("media_url", bad));
        let (status, body) = o.post_form("requests.xml", &form).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body.contains(&format!(
                "media_url: `{bad}` is not an absolute http or https URL"
            )),
            "{body}"
        );
    }
    let page = cases::list(o.server.store(), &Default::default(), 10, None)
        .await
        .unwrap();
    assert_eq!(page.total, 1, "nothing made from a refused report");
}
