//! Cases reaching their back-ends: FixMyStreet-style intake, routing, delivery over Open311 to
//! the simulator and by email to a real SMTP conversation on loopback, through failures.

mod fitting;

use junction_connectors::xml;
use junction_domain::{Actor, DeliveryKind, DeliveryState, Role};
use junction_server::sim::{Behaviour, Simulator};
use junction_store::deliveries::{self, PauseTarget};
use junction_store::{api_keys, cases};
use serde_json::{Value, json};

use crate::support::{SmtpSink, TestServer, data, eventually};

struct Rig {
    server: TestServer,
    sim: Simulator,
    smtp: SmtpSink,
    key: String,
}

impl Rig {
    async fn start(sim_behaviour: Behaviour, timeout_secs: u64) -> Rig {
        Rig::start_on(None, sim_behaviour, timeout_secs).await
    }

    async fn start_with(sim_behaviour: Behaviour, timeout_secs: u64, extra: &str) -> Rig {
        Rig::build(None, sim_behaviour, timeout_secs, extra, false, "").await
    }

    /// As [`Rig::start`], on the database at `url` (SQLite in a temporary directory if none).
    async fn start_on(url: Option<&str>, sim_behaviour: Behaviour, timeout_secs: u64) -> Rig {
        Rig::build(url, sim_behaviour, timeout_secs, "", false, "").await
    }

    async fn build(
        url: Option<&str>,
        sim_behaviour: Behaviour,
        timeout_secs: u64,
        extra: &str,
        ordered: bool,
        backend_params: &str,
    ) -> Rig {
        let sim = Simulator::new(sim_behaviour);
        let (sim_addr, _task) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let (smtp, smtp_port) = SmtpSink::start().await;
        let config = format!(
            r#"
[[connectors]]
id = "backend"
kind = "open311"
ordered = {ordered}
retry = {{ initial_secs = 1, max_delay_secs = 1, max_age_hours = 1, jitter = 0.0 }}
  [connectors.params]
  endpoint = "http://{sim_addr}/open311/v2/"
  api_key = "${{JUNCTION_TEST_BACKEND_KEY}}"
  timeout_secs = {timeout_secs}
  lookup_by_id = true
  upload_files = true
  {backend_params}

[[connectors]]
id = "smtp"
kind = "email"
retry = {{ initial_secs = 1, max_delay_secs = 1, max_age_hours = 1, jitter = 0.0 }}
  [connectors.params]
  smtp_host = "127.0.0.1"
  smtp_port = {smtp_port}
  tls = "none"
  from = "junction@borsetshire.example"

[routing]
email_connector = "smtp"

[[routes]]
name = "deep is P1"
case_types = ["POT"]
when = {{ field = "fields.depth_cm", ge = 10 }}
set = {{ priority = "P1", extra = {{ AnalysisCode1 = "PT1" }} }}
also_email = ["p1@borsetshire.example"]
continue = true

[[routes]]
name = "potholes to the back-end"
case_types = ["POT"]
set = {{ connector = "backend" }}

{extra}
"#
        );
        let server = match url {
            None => TestServer::start(&config).await,
            Some(url) => {
                TestServer::start_on(url, &format!("{}\n{config}", crate::support::CATALOGUE)).await
            }
        };
        let (_, key) = api_keys::create(
            server.store(),
            &Actor::internal("test"),
            "fixmystreet",
            None,
        )
        .await
        .unwrap();
        Rig {
            server,
            sim,
            smtp,
            key,
        }
    }

    /// Posts a FixMyStreet-style report and returns Junction's reference.
    async fn report(&self, depth: u32, fms_id: u32) -> String {
        self.post_report(depth, fms_id, None).await
    }

    /// As [`Rig::report`], uploading a photo as FixMyStreet does (multipart, `photo1`).
    async fn report_with_photo(&self, depth: u32, fms_id: u32, photo: &[u8]) -> String {
        self.post_report(depth, fms_id, Some(photo)).await
    }

    async fn post_report(&self, depth: u32, fms_id: u32, photo: Option<&[u8]>) -> String {
        let (depth, id) = (depth.to_string(), fms_id.to_string());
        let form = [
            ("api_key", self.key.as_str()),
            ("service_code", "POT"),
            ("description", "title: hole\r\n\r\ndetail: a deep one\r\n"),
            ("first_name", "Test"),
            ("last_name", "User"),
            ("email", "test@example.com"),
            ("lat", "50.710000"),
            ("long", "-2.440000"),
            ("attribute[depth_cm]", depth.as_str()),
            ("attribute[road_type]", "carriageway"),
            ("attribute[fixmystreet_id]", id.as_str()),
        ];
        let (content_type, body) = match photo {
            None => (
                "application/x-www-form-urlencoded".to_string(),
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish()
                    .into_bytes(),
            ),
            Some(photo) => {
                let boundary = "rigBoundary7";
                let mut body = Vec::new();
                for (k, v) in form {
                    body.extend_from_slice(
                        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                            .as_bytes(),
                    );
                }
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo1\"; filename=\"{id}.0.full.jpeg\"\r\nContent-Type: image/jpeg\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(photo);
                body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
                (format!("multipart/form-data; boundary={boundary}"), body)
            }
        };
        self.post_requests(&content_type, body).await
    }

    /// Posts `body` to `requests.xml` and returns the reference Junction answers with.
    async fn post_requests(&self, content_type: &str, body: Vec<u8>) -> String {
        let resp = self
            .server
            .client
            .post(format!("{}/open311/v2/requests.xml", self.server.base))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let text = resp.text().await.unwrap();
        xml::parse(&text)
            .unwrap()
            .child("request")
            .and_then(|r| r.text_of("service_request_id"))
            .unwrap()
            .to_string()
    }

    async fn deliveries(&self, reference: &str) -> Vec<deliveries::Delivery> {
        let case = cases::get(self.server.store(), reference)
            .await
            .unwrap()
            .unwrap();
        deliveries::for_case(self.server.store(), &case.id)
            .await
            .unwrap()
    }

    async fn main_delivery(&self, reference: &str) -> deliveries::Delivery {
        self.deliveries(reference)
            .await
            .into_iter()
            .find(|d| d.kind == DeliveryKind::Case)
            .unwrap()
    }

    async fn settled(&self, reference: &str, secs: u64) -> deliveries::Delivery {
        eventually(secs, "the main delivery to settle", || async {
            let d = self.main_delivery(reference).await;
            d.state.is_final().then_some(d)
        })
        .await
    }
}

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

#[tokio::test]
async fn a_paused_connector_holds_and_resume_releases_in_order() {
    let rig = Rig::start(Behaviour::default(), 5).await;
    let manager = rig.server.token(&[Role::Manager]);
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            r#"mutation { pauseConnector(id: "backend", reason: "council upgrade tonight") }"#,
            json!({}),
        )
        .await;
    assert_eq!(data(&body)["pauseConnector"], true);
    let mut references = Vec::new();
    for i in 0..5 {
        references.push(rig.report(4, 1000 + i).await);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(rig.sim.requests().is_empty(), "nothing leaves while paused");
    for r in &references {
        assert_eq!(rig.main_delivery(r).await.state, DeliveryState::Pending);
    }
    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            "{ connectors { id paused pausedReason } }",
            json!({}),
        )
        .await;
    let backend: Value = data(&body)["connectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "backend")
        .cloned()
        .unwrap();
    assert_eq!(backend["paused"], true);
    assert_eq!(backend["pausedReason"], "council upgrade tonight");

    let (_, body) = rig
        .server
        .gql(
            Some(&manager),
            r#"mutation { resumeConnector(id: "backend") }"#,
            json!({}),
        )
        .await;
    assert_eq!(data(&body)["resumeConnector"], false);
    for r in &references {
        assert_eq!(rig.settled(r, 20).await.state, DeliveryState::Sent);
    }
    let mut ids = Vec::new();
    for r in &references {
        ids.push(cases::get(rig.server.store(), r).await.unwrap().unwrap().id);
    }
    // All released, each once. (They are queued oldest first; with several workers they may
    // overtake one another in flight. An `ordered` connector keeps strict order: see below.)
    let mut arrived = rig.sim.arrivals();
    arrived.sort();
    ids.sort();
    assert_eq!(arrived, ids);

    // Pausing is audited with its reason.
    let records = junction_store::audit::list(
        rig.server.store(),
        &junction_store::audit::AuditFilter {
            object_type: Some("connector".into()),
            ..Default::default()
        },
        10,
        None,
    )
    .await
    .unwrap()
    .0;
    let actions: Vec<&str> = records
        .iter()
        .filter_map(|r| r.entry.change.as_ref().map(|c| c.action.as_str()))
        .collect();
    assert_eq!(
        actions[..2],
        ["resume", "pause"],
        "newest first, after the catalogue's"
    );
    let _ = PauseTarget::Agency;
}

#[tokio::test]
async fn an_ordered_connector_takes_cases_one_at_a_time_in_the_order_they_came() {
    ordered_delivery(None).await;
    if let Some(db) = crate::support::TestDb::postgres().await {
        ordered_delivery(Some(&db.url)).await;
    }
}

async fn ordered_delivery(url: Option<&str>) {
    // The first case to reach the back-end is refused once (HTTP 500): the rest wait for it.
    let behaviour = Behaviour {
        fail_next: 1,
        ..Behaviour::default()
    };
    let rig = Rig::build(url, behaviour, 5, "", true, "").await;
    let manager = rig.server.token(&[Role::Manager]);
    rig.server
        .gql(
            Some(&manager),
            r#"mutation { pauseConnector(id: "backend", reason: "council upgrade tonight") }"#,
            json!({}),
        )
        .await;
    let mut references = Vec::new();
    for i in 0..6 {
        references.push(rig.report(4, 2000 + i).await);
    }
    let mut ids = Vec::new();
    for r in &references {
        ids.push(cases::get(rig.server.store(), r).await.unwrap().unwrap().id);
    }
    rig.server
        .gql(
            Some(&manager),
            r#"mutation { resumeConnector(id: "backend") }"#,
            json!({}),
        )
        .await;
    for r in &references {
        assert_eq!(rig.settled(r, 30).await.state, DeliveryState::Sent);
    }
    // Every case arrived once, in the order the cases were made, the refused one first.
    assert_eq!(rig.sim.arrivals(), ids);
    let first = rig.main_delivery(&references[0]).await;
    assert_eq!(first.attempts, 2, "{first:?}");
}

#[tokio::test]
async fn the_queue_runs_on_postgresql_too() {
    let Some(db) = crate::support::TestDb::postgres().await else {
        return; // JUNCTION_TEST_DATABASE_URL is not set: SQLite only
    };
    let rig = Rig::start_on(
        Some(&db.url),
        Behaviour {
            fail_next: 1,
            ..Behaviour::default()
        },
        5,
    )
    .await;
    let reference = rig.report(12, 1101).await;
    let d = rig.settled(&reference, 30).await;
    assert_eq!((d.state, d.attempts), (DeliveryState::Sent, 2));
    assert_eq!(rig.sim.requests().len(), 1);
    let mails = eventually(20, "the P1 email", || async {
        let m = rig.smtp.messages();
        (!m.is_empty()).then_some(m)
    })
    .await;
    assert_eq!(mails.len(), 1);
    rig.server.stop().await;
}

#[tokio::test]
async fn rerouting_after_a_category_change_resends_and_keeps_the_old_reference() {
    // A back-end that keeps one request per case id, so the resend lands on the same one.
    let rig = Rig::start_with(
        Behaviour {
            dedupe: true,
            ..Behaviour::default()
        },
        5,
        r#"
[[routes]]
name = "fly-tipping to the back-end"
case_types = ["FLY"]
set = { connector = "backend", team = "street-cleaning" }
"#,
    )
    .await;
    let reference = rig.report(4, 1201).await;
    let first = rig.settled(&reference, 20).await;
    let old_ref = first.external_ref.clone().unwrap();

    let officer = rig.server.token(&[Role::Officer]);
    let (_, body) = rig
        .server
        .gql(
            Some(&officer),
            r#"mutation($id: ID!) { rerouteCase(id: $id, caseType: "FLY") { caseType { code } route fields } }"#,
            json!({"id": reference}),
        )
        .await;
    let c = &data(&body)["rerouteCase"];
    assert_eq!(c["caseType"]["code"], "FLY", "{body}");
    assert_eq!(c["route"]["rules"], json!(["fly-tipping to the back-end"]));
    assert_eq!(c["fields"], json!({}), "pothole fields do not carry over");

    // A second delivery to the back-end, under the new service code.
    let ds = eventually(20, "the resend", || async {
        let ds = rig.deliveries(&reference).await;
        (ds.len() == 2 && ds[1].state == DeliveryState::Sent).then_some(ds)
    })
    .await;
    assert_eq!(ds[0].state, DeliveryState::Sent);
    let posts: Vec<_> = rig.sim.requests();
    assert_eq!(
        posts.len(),
        1,
        "the back-end recognised the same case by its id"
    );
    assert_eq!(posts[0].posts, 2);

    let case = cases::get(rig.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    let history = cases::history(rig.server.store(), &case.id).await.unwrap();
    let rerouted = history
        .iter()
        .rev()
        .find(|e| e.kind.as_str() == "routed")
        .unwrap();
    assert_eq!(
        rerouted.data["previous_external_refs"],
        json!([{"connector": "backend", "external_id": old_ref}])
    );
    assert_eq!(
        rerouted.data["case_type"],
        json!({"from": "POT", "to": "FLY"})
    );
    assert_eq!(rerouted.data["dropped_fields"]["depth_cm"], json!(4));
}
