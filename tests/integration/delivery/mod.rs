//! Cases reaching their back-ends: FixMyStreet-style intake, routing, delivery over Open311 to
//! the simulator and by email to a real SMTP conversation on loopback, through failures.

mod arrival;
mod failures;
mod fitting;
mod holding;
mod updates_back;
mod updates_pushed;

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
        crate::support::service_request_id(&resp.text().await.unwrap())
    }

    async fn deliveries(&self, reference: &str) -> Vec<deliveries::Delivery> {
        crate::support::deliveries_of(self.server.store(), reference).await
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
