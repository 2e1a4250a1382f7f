//! Photos uploaded with reports and updates, kept for staff and never for partners.

use super::*;

#[tokio::test]
async fn uploaded_photos_are_kept_with_the_case_for_staff_to_download() {
    let o = Open311::start().await;
    // FixMyStreet's upload: form fields, then `photo1` (its `{id}.{i}.full.{ext}` name), plus a
    // file whose declared type a browser would run.
    let photo: Vec<u8> = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00,
    ]
    .into_iter()
    .chain((0..=255u8).cycle().take(40_000))
    .chain([0xFF, 0xD9])
    .collect();
    let body = multipart(
        &fms_report(&o.key, "3"),
        &[
            (
                "photo1",
                "C:\\fakepath\\77.0.full.jpeg",
                "image/jpeg",
                &photo,
            ),
            (
                "file_note",
                "note.html",
                "text/html",
                b"<script>alert(1)</script>",
            ),
        ],
    );
    let (status, text) = o.post_multipart("requests.xml", body).await;
    assert_eq!(status, 200, "{text}");
    let reference = parse(&text)
        .child("request")
        .unwrap()
        .text_of("service_request_id")
        .unwrap()
        .to_string();

    let officer = o.server.token(&[Role::Officer]);
    let query = "query($id: ID!) { case(id: $id) { attachments { part fileName contentType size sha256 url } } }";
    let (_, body) = o
        .server
        .gql(Some(&officer), query, json!({"id": reference}))
        .await;
    let files = data(&body)["case"]["attachments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(files.len(), 2, "{body}");
    assert_eq!(files[0]["part"], "photo1");
    assert_eq!(
        files[0]["fileName"], "77.0.full.jpeg",
        "no client directory kept"
    );
    assert_eq!(files[0]["size"], photo.len());
    assert_eq!(
        files[0]["sha256"],
        junction_domain::audit::sha256_hex(&photo).as_str()
    );

    // The bytes come back exactly, to staff, with their token.
    let download = |url: &str, token: Option<&str>| {
        let mut req = o.server.client.get(format!("{}{url}", o.server.base));
        if let Some(t) = token {
            req = req.bearer_auth(t.to_string());
        }
        req.send()
    };
    let resp = download(files[0]["url"].as_str().unwrap(), Some(&officer))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.headers()["content-type"], "image/jpeg");
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.bytes().await.unwrap().to_vec(), photo);
    // A type a browser would run goes out as a plain download.
    let resp = download(files[1]["url"].as_str().unwrap(), Some(&officer))
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/octet-stream");
    assert!(
        resp.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );

    // Not for partners, nor without a token; an unknown id is 404.
    let partner = o.server.token_for("pc", Some("police"), &[Role::Partner]);
    let resp = download(files[0]["url"].as_str().unwrap(), Some(&partner))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = download(files[0]["url"].as_str().unwrap(), None)
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = download("/attachments/999999", Some(&officer))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);

    // A photo uploaded with a front-end's update is kept with the case too.
    let update_form = [
        ("api_key", o.key.as_str()),
        ("service_request_id", reference.as_str()),
        ("update_id", "9001"),
        ("first_name", "Bob"),
        ("last_name", "Mould"),
        ("description", "Still there, photo attached"),
        ("status", "OPEN"),
        ("updated_datetime", "2026-11-01T15:00:00Z"),
    ];
    let body = multipart(
        &update_form,
        &[("photo1", "9001.0.jpeg", "image/jpeg", &photo[..1000])],
    );
    let (status, text) = o.post_multipart("servicerequestupdates.xml", body).await;
    assert_eq!(status, 200, "{text}");
    let (_, body) = o
        .server
        .gql(Some(&officer), query, json!({"id": reference}))
        .await;
    let files = data(&body)["case"]["attachments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(files.len(), 3, "{body}");
    assert_eq!(files[2]["fileName"], "9001.0.jpeg");
    assert_eq!(files[2]["size"], 1000);

    // The case's creation record names the files by digest; every download is audited.
    let auditor = o.server.token(&[Role::Auditor]);
    let (_, log) = o
        .server
        .gql(
            Some(&auditor),
            "{ auditLog(first: 50) { edges { node { operationType outcome errorCode } } } }",
            json!({}),
        )
        .await;
    let downloads: Vec<&Value> = data(&log)["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["operationType"] == "download")
        .collect();
    assert_eq!(downloads.len(), 5, "{log}");
    // A download of a file that does not exist is recorded as GraphQL records a NOT_FOUND.
    let missing: Vec<&&Value> = downloads
        .iter()
        .filter(|n| n["errorCode"] == "NOT_FOUND")
        .collect();
    assert_eq!(missing.len(), 1, "{log}");
    assert_eq!(missing[0]["outcome"], "error");
}
