//! A report reaching its back-end: routed, delivered with its reference kept, its P1 copy
//! by email, its token resolved and its photos carried on.

use super::*;

#[tokio::test]
async fn a_report_reaches_the_back_end_and_the_p1_copy_goes_by_email() {
    let rig = Rig::start(Behaviour::default(), 5).await;
    let reference = rig.report(12, 501).await;
    let d = rig.settled(&reference, 20).await;
    assert_eq!(d.state, DeliveryState::Sent, "{d:?}");
    let external = d.external_ref.clone().unwrap();
    assert!(external.starts_with("SIM-"));

    // The back-end got the case as FixMyStreet would send it, with our id and the rule's codes.
    let case = cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    let got = rig.sim.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].client_id.as_deref(), Some(case.id.as_str()));
    assert_eq!(got[0].attributes["AnalysisCode1"], ["PT1"]);
    assert_eq!(got[0].attributes["depth_cm"], ["12"]);
    assert_eq!(got[0].attributes["priority"], ["P1"]);

    // The P1 copy went over SMTP, with the reporter as reply-to.
    let mails = eventually(20, "the P1 email", || async {
        let m = rig.smtp.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].to, ["<p1@borsetshire.example>"]);
    assert_eq!(mails[0].from, "<junction@borsetshire.example>");
    assert!(
        mails[0].data.contains(&format!("case {reference}")),
        "{}",
        mails[0].data
    );
    assert!(
        mails[0].data.contains("Reply-To: test@example.com"),
        "{}",
        mails[0].data
    );
    assert!(mails[0].data.contains("[P1]"));

    // Visible over GraphQL and Open311.
    let manager = rig.server.token(&[Role::Manager]);
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            "query($id: ID!) { case(id: $id) { externalRefs { connector externalId } deliveries { connector kind state attempts externalRef } route } }",
            json!({"id": reference}),
        )
        .await;
    let c = &data(&body)["case"];
    assert_eq!(
        c["externalRefs"],
        json!([{"connector": "backend", "externalId": external}])
    );
    assert_eq!(
        c["route"]["rules"],
        json!(["deep is P1", "potholes to the back-end"])
    );
    let resp = rig
        .server
        .client
        .get(format!(
            // The front-end that sent the case sees where it went.
            "{}/open311/v2/requests/{reference}.xml?api_key={}",
            rig.server.base, rig.key
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let root = xml::parse(&resp).unwrap();
    assert_eq!(
        root.child("request").unwrap().text_of("external_id"),
        Some(external.as_str())
    );
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            "{ connectors { id health { sent pending dead } } }",
            json!({}),
        )
        .await;
    let backend = data(&body)["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "backend")
        .cloned()
        .unwrap();
    assert_eq!(backend["health"]["sent"], 1);
}

#[tokio::test]
async fn tokens_are_resolved_to_references() {
    let rig = Rig::start(
        Behaviour {
            token_mode: true,
            token_delay_ms: 300,
            ..Behaviour::default()
        },
        5,
    )
    .await;
    let reference = rig.report(4, 901).await;
    let d = rig.settled(&reference, 30).await;
    assert_eq!(d.state, DeliveryState::Sent);
    let got = rig.sim.requests();
    assert_eq!(
        d.external_ref.as_deref(),
        Some(got[0].service_request_id.as_str())
    );
}

#[tokio::test]
async fn uploaded_photos_travel_on_to_the_back_end_and_with_the_email() {
    let rig = Rig::start(Behaviour::default(), 5).await;
    let photo: Vec<u8> = [0xFF, 0xD8, 0xFF]
        .into_iter()
        .chain((0..=255u8).cycle().take(20_000))
        .collect();
    let reference = rig.report_with_photo(12, 777, &photo).await;
    assert_eq!(rig.settled(&reference, 20).await.state, DeliveryState::Sent);
    // The back-end (upload_files = true) got the photo as the same multipart part, byte for byte.
    let got = rig.sim.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].attributes["depth_cm"], ["12"]);
    assert_eq!(got[0].files.len(), 1, "{:?}", got[0]);
    let file = &got[0].files[0];
    assert_eq!(
        (
            file.part.as_str(),
            file.file_name.as_str(),
            file.content_type.as_str()
        ),
        ("photo1", "777.0.full.jpeg", "image/jpeg")
    );
    assert_eq!(file.sha256, junction_domain::audit::sha256_hex(&photo));
    // The P1 email carries it as an attachment.
    let mails = eventually(20, "the P1 email", || async {
        let m = rig.smtp.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    let data = &mails[0].data;
    assert!(data.contains("multipart/mixed"), "{data}");
    assert!(data.contains("777.0.full.jpeg"), "{data}");
    assert!(data.contains("Content-Type: image/jpeg"), "{data}");
}
