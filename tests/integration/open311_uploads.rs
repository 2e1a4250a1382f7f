//! Photos uploaded with Open311 reports and updates: phone-sized photos are kept, a file over
//! the configured limit never costs the report (it is set aside and the refusal recorded on the
//! case), and a refusal names the real limit.

use junction_domain::Role;
use junction_store::cases;
use serde_json::{Value, json};

use crate::open311::{Open311, fms_report, multipart, parse};
use crate::support::data;

/// A JPEG-looking file of `len` bytes.
fn photo(len: usize) -> Vec<u8> {
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..=255u8).cycle().take(len - 4));
    bytes
}

fn reference(text: &str) -> String {
    parse(text)
        .child("request")
        .unwrap()
        .text_of("service_request_id")
        .unwrap()
        .to_string()
}

/// The case's attachments and its history, as an officer sees them.
async fn attachments_and_history(o: &Open311, reference: &str) -> (Vec<Value>, Vec<Value>) {
    let officer = o.server.token(&[Role::Officer]);
    let query = "query($id: ID!) { case(id: $id) { attachments { part fileName size } \
                 history { kind data } } }";
    let (_, body) = o
        .server
        .gql(Some(&officer), query, json!({"id": reference}))
        .await;
    let case = &data(&body)["case"];
    (
        case["attachments"].as_array().unwrap().clone(),
        case["history"].as_array().unwrap().clone(),
    )
}

#[tokio::test]
async fn a_phone_photo_of_several_megabytes_is_kept() {
    // FixMyStreet uploads photos as they came off the phone: 2.5 MB was refused before.
    let o = Open311::start().await;
    let big = photo(2_500_000);
    let body = multipart(
        &fms_report(&o.key, "3"),
        &[("photo1", "1.0.full.jpeg", "image/jpeg", &big)],
    );
    let (status, text) = o.post_multipart("requests.xml", body).await;
    assert_eq!(status, 200, "{text}");
    let (files, _) = attachments_and_history(&o, &reference(&text)).await;
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["size"], 2_500_000);
}

#[tokio::test]
async fn a_file_over_the_limit_is_set_aside_and_the_report_kept() {
    let o = Open311::start_with("[limits]\nmax_upload_file_bytes = 1000000\n").await;
    let big = photo(1_500_000);
    let small = photo(20_000);
    let body = multipart(
        &fms_report(&o.key, "3"),
        &[
            ("photo1", "1.0.full.jpeg", "image/jpeg", &big),
            ("photo2", "1.1.full.jpeg", "image/jpeg", &small),
        ],
    );
    let (status, text) = o.post_multipart("requests.xml", body).await;
    assert_eq!(status, 200, "the report is taken in: {text}");
    let reference = reference(&text);
    let case = cases::get(o.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.fields["depth_cm"], json!(3), "the fields arrived");

    let (files, history) = attachments_and_history(&o, &reference).await;
    assert_eq!(files.len(), 1, "the photo under the limit is kept");
    assert_eq!(files[0]["part"], "photo2");
    let refused: Vec<&Value> = history
        .iter()
        .filter(|e| e["kind"] == "FILE_REFUSED")
        .collect();
    assert_eq!(refused.len(), 1, "{history:?}");
    let event = &refused[0]["data"];
    assert_eq!(event["part"], "photo1");
    assert_eq!(event["fileName"], "1.0.full.jpeg");
    assert_eq!(event["sizeAtLeast"], 1_500_000);
    let reason = event["reason"].as_str().unwrap();
    assert!(
        reason.contains("1000000") && reason.contains("max_upload_file_bytes"),
        "the reason names the limit: {reason}"
    );

    // The same for a photo sent with an update: the update lands, the refusal is recorded.
    let update = [
        ("api_key", o.key.as_str()),
        ("service_request_id", reference.as_str()),
        ("update_id", "77"),
        ("description", "Worse now"),
        ("status", "OPEN"),
        ("updated_datetime", "2026-11-01T15:00:00Z"),
    ];
    let body = multipart(&update, &[("photo1", "77.0.jpeg", "image/jpeg", &big)]);
    let (status, text) = o.post_multipart("servicerequestupdates.xml", body).await;
    assert_eq!(status, 200, "{text}");
    let (files, history) = attachments_and_history(&o, &reference).await;
    assert_eq!(files.len(), 1);
    assert_eq!(
        history
            .iter()
            .filter(|e| e["kind"] == "FILE_REFUSED")
            .count(),
        2
    );
    assert!(
        history
            .iter()
            .any(|e| e["kind"] == "UPDATE_RECEIVED" && e["data"]["description"] == "Worse now")
    );
}

#[tokio::test]
async fn refusals_name_the_real_limit_and_keep_nothing() {
    // Where the council requires photos to arrive whole, an oversized file refuses the report,
    // saying which file and which limit, and nothing is created.
    let o = Open311::start_with(
        "[limits]\nmax_upload_file_bytes = 1000000\nmax_upload_request_bytes = 3000000\n\
         refuse_oversized_uploads = true\n",
    )
    .await;
    let before = count(&o).await;
    let body = multipart(
        &fms_report(&o.key, "3"),
        &[("photo1", "1.0.full.jpeg", "image/jpeg", &photo(1_200_000))],
    );
    let (status, text) = o.post_multipart("requests.json", body).await;
    assert_eq!(status, 413, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let description = answer[0]["description"].as_str().unwrap();
    assert!(
        description.contains("1.0.full.jpeg")
            && description.contains("1000000")
            && description.contains("max_upload_file_bytes"),
        "{description}"
    );

    // A body over the request limit is refused naming that limit, whatever it carries.
    let files: Vec<Vec<u8>> = (0..4).map(|_| photo(900_000)).collect();
    let parts: Vec<(&str, &str, &str, &[u8])> = files
        .iter()
        .map(|f| ("photo", "p.jpeg", "image/jpeg", f.as_slice()))
        .collect();
    let body = multipart(&fms_report(&o.key, "3"), &parts);
    let (status, text) = o.post_multipart("requests.json", body).await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("3000000") && text.contains("max_upload_request_bytes"),
        "{text}"
    );
    assert_eq!(count(&o).await, before, "no case was created");
}

async fn count(o: &Open311) -> usize {
    let filter = junction_store::cases::CaseFilter::default();
    cases::list(o.server.store(), &filter, 1, None)
        .await
        .unwrap()
        .total as usize
}
