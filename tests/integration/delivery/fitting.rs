//! What a back-end is sent beyond the case's fields: the front-end's photo addresses, and a
//! description fitted to a back-end's documented limit, with the history saying so.

use super::*;

const FIRST: &str = "https://www.fixmystreet.com/photo/501.0.full.jpeg?c0ffee";
const SECOND: &str = "https://www.fixmystreet.com/photo/501.1.full.jpeg?c0ffee";

impl Rig {
    /// Posts a FixMyStreet report with this description and these photo addresses.
    async fn report_as_sent(&self, fms_id: &str, description: &str, media: &[&str]) -> String {
        let mut form = vec![
            ("api_key", self.key.as_str()),
            ("service_code", "POT"),
            ("description", description),
            ("lat", "50.710000"),
            ("long", "-2.440000"),
            ("attribute[depth_cm]", "12"),
            ("attribute[road_type]", "carriageway"),
            ("attribute[fixmystreet_id]", fms_id),
        ];
        form.extend(media.iter().map(|m| ("media_url", *m)));
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.post_requests("application/x-www-form-urlencoded", body.into_bytes())
            .await
    }
}

#[tokio::test]
async fn photo_addresses_travel_on_to_the_back_end_and_in_the_email() {
    let rig = Rig::start(Behaviour::default(), 5).await;
    let reference = rig
        .report_as_sent("501", "A deep one", &[FIRST, SECOND])
        .await;
    assert_eq!(rig.settled(&reference, 20).await.state, DeliveryState::Sent);
    let got = rig.sim.requests();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].media_urls, [FIRST, SECOND], "repeated, in order");
    // The P1 copy by email lists them for the officer.
    let mails = eventually(20, "the P1 email", || async {
        let m = rig.smtp.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    let text = &mails[0].data;
    assert!(text.contains("Photos"), "{text}");
    assert!(text.contains(FIRST) && text.contains(SECOND), "{text}");
}

#[tokio::test]
async fn a_description_over_a_back_ends_documented_limit_is_shortened_and_the_history_says_so() {
    let strict = Behaviour {
        max_description_chars: Some(4_000),
        ..Behaviour::default()
    };
    let long: String = "Water pools across the whole road after rain. "
        .repeat(90)
        .trim()
        .to_string();
    assert!(long.chars().count() > 4_000);

    // Without the limit configured, the back-end refuses the case outright.
    let rig = Rig::start(strict.clone(), 5).await;
    let reference = rig.report_as_sent("601", &long, &[]).await;
    let d = rig.settled(&reference, 20).await;
    assert_eq!(d.state, DeliveryState::Dead, "{d:?}");

    // With it, the back-end gets exactly its limit, and the case keeps the whole text.
    let rig = Rig::build(None, strict, 5, "", false, "max_description_chars = 4000").await;
    let reference = rig.report_as_sent("602", &long, &[]).await;
    let d = rig.settled(&reference, 20).await;
    assert_eq!(d.state, DeliveryState::Sent, "{d:?}");
    let sent = &rig.sim.requests()[0].description;
    assert_eq!(sent.chars().count(), 4_000);
    assert!(sent.ends_with('…'));
    assert!(long.starts_with(sent.trim_end_matches('…')));
    let case = cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(case.description, long);
    let history = cases::history(rig.server.store(), &case.id).await.unwrap();
    let delivered = history
        .iter()
        .find(|e| {
            e.kind == junction_domain::CaseEventKind::Delivered && e.data["connector"] == "backend"
        })
        .expect("a delivered event");
    let notes = delivered.data["notes"].to_string();
    assert!(
        notes.contains(&format!(
            "description shortened from {} to 4000 characters, the back-end's limit",
            long.chars().count()
        )),
        "{notes}"
    );
}

/// A front-end's photo server on loopback: a JPEG, and an HTML error page where a photo
/// should be.
async fn photo_server(jpeg: Vec<u8>) -> std::net::SocketAddr {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/photo/1.jpeg",
            get(move || {
                let jpeg = jpeg.clone();
                async move { ([("content-type", "image/jpeg")], jpeg) }
            }),
        )
        .route(
            "/photo/2.jpeg",
            get(|| async {
                (
                    [("content-type", "image/jpeg")],
                    "<html><body>Photo not found</body></html>",
                )
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test]
async fn photos_are_fetched_only_from_allowed_hosts_and_never_from_private_addresses() {
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..=255u8).cycle().take(30_000))
        .chain([0xFF, 0xD9])
        .collect();
    let addr = photo_server(jpeg.clone()).await;
    let photo = format!("http://{addr}/photo/1.jpeg");
    let not_a_photo = format!("http://{addr}/photo/2.jpeg");
    let elsewhere = format!("http://localhost:{}/photo/1.jpeg", addr.port());

    // The host is allowed, but it is a loopback address: nothing is fetched, and the
    // addresses still go on.
    let rig = Rig::start_with(
        Behaviour::default(),
        5,
        "[media]\nhosts = [\"127.0.0.1\"]\n",
    )
    .await;
    let reference = rig.report_as_sent("701", "Hole", &[&photo]).await;
    assert_eq!(rig.settled(&reference, 20).await.state, DeliveryState::Sent);
    let got = &rig.sim.requests()[0];
    assert!(got.files.is_empty(), "{got:?}");
    assert_eq!(got.media_urls, std::slice::from_ref(&photo));

    // On a development machine that allows private addresses: the allowed host's image is
    // fetched, kept and uploaded; an HTML page labelled as a JPEG and a host not on the list
    // are not.
    let rig = Rig::start_with(
        Behaviour::default(),
        5,
        "[media]\nhosts = [\"127.0.0.1\"]\nallow_private_addresses = true\n",
    )
    .await;
    let reference = rig
        .report_as_sent("702", "Hole", &[&photo, &not_a_photo, &elsewhere])
        .await;
    assert_eq!(rig.settled(&reference, 20).await.state, DeliveryState::Sent);
    let got = &rig.sim.requests()[0];
    assert_eq!(got.files.len(), 1, "{got:?}");
    assert_eq!(got.files[0].part, "media1");
    assert_eq!(got.files[0].content_type, "image/jpeg");
    assert_eq!(
        got.files[0].sha256,
        junction_domain::audit::sha256_hex(&jpeg)
    );
    assert_eq!(got.media_urls.len(), 3);
    let case = cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    let kept = junction_store::attachments::of_case(rig.server.store(), &case.id)
        .await
        .unwrap();
    assert_eq!(
        kept.len(),
        1,
        "kept with the case, once, for every delivery"
    );
}
