//! Junction's Open311 server, spoken to as FixMyStreet and the spec's own samples speak it.

mod errors;
mod fixmystreet_reads;
mod fixmystreet_sends;
mod photos;
mod reports;
mod services;
mod update_feed;

use junction_connectors::xml::{self, Element};
use junction_domain::{Actor, DeliveryKind, DeliveryState, Role};
use junction_store::{api_keys, audit, cases, deliveries, updates};
use serde_json::{Value, json};

use crate::support::{TestServer, data};

/// Routing for the tests: highways' cases go by email, deep potholes are P1 with a copy.
pub(crate) const ROUTING: &str = r#"
[[connectors]]
id = "smtp"
kind = "email"
  [connectors.params]
  smtp_host = "127.0.0.1"
  smtp_port = 2525
  tls = "none"
  from = "junction@borsetshire.example"

[routing]
email_connector = "smtp"

[[routes]]
name = "deep is P1"
case_types = ["POT"]
when = { field = "fields.depth_cm", ge = 10 }
set = { priority = "P1", extra = { AnalysisCode1 = "PT1" } }
also_email = ["p1@borsetshire.example"]

[[case_types]]
code = "001"
name = "Sinkhole"
agency = "highways"
published = true
  [[case_types.fields]]
  code = "WHISPAWN"
  description = "Tag number"
  datatype = "string"
  classification = "public"
  [[case_types.fields]]
  code = "WHISDORN"
  description = "Door"
  datatype = "string"
  classification = "public"
"#;

pub(crate) struct Open311 {
    pub(crate) server: TestServer,
    pub(crate) key: String,
}

impl Open311 {
    pub(crate) async fn start() -> Open311 {
        Open311::start_with("").await
    }

    pub(crate) async fn start_with(extra: &str) -> Open311 {
        Open311::with_server(TestServer::start(&format!("{ROUTING}\n{extra}")).await).await
    }

    pub(crate) async fn with_server(server: TestServer) -> Open311 {
        let (_, key) = api_keys::create(
            server.store(),
            &Actor::internal("test"),
            "fixmystreet",
            None,
        )
        .await
        .unwrap();
        Open311 { server, key }
    }

    fn url(&self, path: &str) -> String {
        format!("{}/open311/v2/{path}", self.server.base)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, String) {
        let resp = self.server.client.get(self.url(path)).send().await.unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }

    pub(crate) async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> (u16, String) {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.post_raw(path, "application/x-www-form-urlencoded", body.into_bytes())
            .await
    }

    /// POSTs a body made by [`multipart`].
    pub(crate) async fn post_multipart(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
        self.post_raw(path, &content_type, body).await
    }

    pub(crate) async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> (u16, String) {
        let resp = self
            .server
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// The boundary [`multipart`] uses.
const BOUNDARY: &str = "fmsBoundary42";

/// A multipart body as FixMyStreet sends one: `fields`, then `files` as
/// (part, file name, content type, bytes).
pub(crate) fn multipart(fields: &[(&str, &str)], files: &[(&str, &str, &str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n")
                .as_bytes(),
        );
    }
    for (part, name, kind, data) in files {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{part}\"; filename=\"{name}\"\r\nContent-Type: {kind}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

pub(crate) fn parse(body: &str) -> Element {
    xml::parse(body).unwrap_or_else(|e| panic!("not XML ({e}): {body}"))
}

/// A FixMyStreet-style report, as `perllib/Open311.pm` posts it.
pub(crate) fn fms_report<'a>(key: &'a str, depth: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("jurisdiction_id", "borsetshire"),
        ("api_key", key),
        ("service_code", "POT"),
        (
            "description",
            "title: a problem\r\n\r\ndetail: problem detail\r\n\r\nurl: http://example.com/report/1\r\n\r\nSubmitted via FixMyStreet\r\n",
        ),
        ("first_name", "Test"),
        ("last_name", "User"),
        ("email", "test@example.com"),
        ("lat", "50.710000"),
        ("long", "-2.440000"),
        (
            "media_url",
            "http://www.example.org/photo/1.0.full.jpeg?11111111",
        ),
        ("attribute[fixmystreet_id]", "4242"),
        ("attribute[easting]", "529025"),
        ("attribute[northing]", "179716"),
        ("attribute[depth_cm]", depth),
        ("attribute[road_type]", "carriageway"),
        ("attribute[uprn]", "100023336956"),
        ("attribute[last_name]", "User"),
    ]
}

/// Every element name under `e`, recursively.
fn names(e: &Element, out: &mut std::collections::BTreeSet<String>) {
    for c in &e.children {
        out.insert(c.name.clone());
        names(c, out);
    }
}

fn assert_has_spec_elements(ours: &Element, spec_file: &str) {
    let text = std::fs::read_to_string(format!(
        "{}/fixtures/open311/{spec_file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    // Some samples are whole HTTP responses: the document starts at its declaration.
    let spec = parse(&text[text.find("<?xml").unwrap_or(0)..]);
    assert_eq!(ours.name, spec.name, "root element as in {spec_file}");
    let (mut want, mut got) = Default::default();
    names(&spec, &mut want);
    names(ours, &mut got);
    let missing: Vec<_> = want.difference(&got).collect();
    assert!(missing.is_empty(), "{spec_file}: missing {missing:?}");
}
