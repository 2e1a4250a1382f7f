//! Junction's Open311 server, spoken to as FixMyStreet and the spec's own samples speak it.

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

#[tokio::test]
async fn services_and_definitions_in_xml_and_json() {
    let o = Open311::start().await;
    let (status, body) = o.get("services.xml").await;
    assert_eq!(status, 200, "{body}");
    let root = parse(&body);
    assert_has_spec_elements(&root, "get_services.response.xml");
    let codes: Vec<&str> = root
        .children("service")
        .filter_map(|s| s.text_of("service_code"))
        .collect();
    assert_eq!(codes, ["001", "FLY", "POT"]);

    let (status, body) = o.get("services.json?jurisdiction_id=").await;
    assert_eq!(
        status, 200,
        "an empty jurisdiction_id counts as absent: {body}"
    );
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json[2]["service_code"], "POT");
    assert_eq!(json[2]["metadata"], true);

    let (status, body) = o.get("services/POT.xml").await;
    assert_eq!(status, 200);
    let def = parse(&body);
    assert_has_spec_elements(&def, "get_service_definition.response.xml");
    let attrs: Vec<&Element> = def
        .child("attributes")
        .unwrap()
        .children("attribute")
        .collect();
    assert_eq!(attrs[0].text_of("code"), Some("depth_cm"));
    assert_eq!(attrs[0].text_of("required"), Some("true"));
    assert_eq!(attrs[1].text_of("datatype"), Some("singlevaluelist"));
    let keys: Vec<&str> = attrs[1]
        .child("values")
        .unwrap()
        .children("value")
        .filter_map(|v| v.text_of("key"))
        .collect();
    assert_eq!(keys, ["carriageway", "footway"]);
    let fms = attrs.last().unwrap();
    assert_eq!(fms.text_of("code"), Some("fixmystreet_id"));
    assert_eq!(fms.text_of("automated"), Some("server_set"));
    assert_eq!(fms.text_of("variable"), Some("false"));

    let (status, body) = o.get("services/POT.json").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["attributes"][1]["values"][0]["key"], "carriageway");

    let (status, body) = o.get("services/NOPE.xml").await;
    assert_eq!(status, 404);
    let errors = parse(&body);
    assert_has_spec_elements(&errors, "error_403.response.http.xml");
    assert_eq!(errors.child("error").unwrap().text_of("code"), Some("404"));

    let (status, body) = o.get("services.html").await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = o.get("discovery.json").await;
    assert_eq!(status, 200);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["endpoints"][0]["formats"][1], "application/json");
}

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
    let downloads = data(&log)["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["operationType"] == "download")
        .count();
    assert_eq!(downloads, 5, "{log}");
}

#[tokio::test]
async fn bad_input_gets_the_specs_errors_and_creates_nothing() {
    let o = Open311::start().await;
    let long = "x".repeat(4_001);
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
            "description: is 4001 characters long",
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
    // JSON errors are a bare array.
    let (status, body) = o
        .post_form("requests.json", &[("service_code", "POT")])
        .await;
    assert_eq!(status, 403);
    let json: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json[0]["code"], 403);
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
        table.len() as u64 + 2,
        "one audit record per call"
    );
    let (records, _) = audit::list(o.server.store(), &Default::default(), 1, None)
        .await
        .unwrap();
    let op = records[0].entry.operation.as_ref().unwrap();
    assert_eq!(op.operation_type, "open311");
    assert_eq!(op.outcome, "rejected");
}

#[tokio::test]
async fn updates_go_out_in_their_window_and_come_in_once() {
    let o = Open311::start().await;
    let (_, body) = o.post_form("requests.xml", &fms_report(&o.key, "4")).await;
    let id = parse(&body)
        .child("request")
        .unwrap()
        .text_of("service_request_id")
        .unwrap()
        .to_string();

    // An officer's status change is an update FixMyStreet can fetch.
    let officer = o
        .server
        .token_for("olive", Some("highways"), &[Role::Officer]);
    let (status, resp) = o
        .server
        .gql(
            Some(&officer),
            r#"mutation($id: ID!) { changeCaseStatus(id: $id, status: IN_PROGRESS) { status } }"#,
            json!({"id": id}),
        )
        .await;
    assert_eq!(status, 200, "{resp}");

    let now = chrono::Utc::now();
    let key = o.key.clone();
    let window_as = |key: &str,
                     from: chrono::DateTime<chrono::Utc>,
                     to: chrono::DateTime<chrono::Utc>| {
        format!(
            "servicerequestupdates.xml?jurisdiction_id=borsetshire&api_key={key}&start_date={}&end_date={}",
            from.format("%Y-%m-%dT%H:%M:%SZ"),
            to.format("%Y-%m-%dT%H:%M:%SZ")
        )
    };
    let window = |from, to| window_as(&key, from, to);
    // FixMyStreet polls with `api_key=` always present, empty when it has no key: answered,
    // but the front-end's own id for the case is that front-end's alone.
    let (status, body) = o
        .get(&window_as(
            "",
            now - chrono::Duration::hours(2),
            now + chrono::Duration::minutes(1),
        ))
        .await;
    assert_eq!(status, 200, "an empty api_key is anonymous: {body}");
    let anonymous = parse(&body);
    let update = anonymous.child("request_update").expect("one update");
    assert_eq!(update.text_of("service_request_id"), Some(id.as_str()));
    assert_eq!(update.text_of("fixmystreet_id"), None);
    let (status, body) = o
        .get(&window(
            now - chrono::Duration::hours(2),
            now + chrono::Duration::minutes(1),
        ))
        .await;
    assert_eq!(status, 200, "FixMyStreet polls with its key: {body}");
    let root = parse(&body);
    assert_has_spec_elements(&root, "get_servicerequestupdates.response.xml");
    let update = root.child("request_update").expect("one update");
    assert_eq!(update.text_of("service_request_id"), Some(id.as_str()));
    assert_eq!(update.text_of("status"), Some("in_progress"));
    assert_eq!(update.text_of("fixmystreet_id"), Some("4242"));
    assert_ne!(update.text_of("update_id"), Some("0"));
    let stamp = update.text_of("updated_datetime").unwrap();
    assert!(stamp.ends_with('Z') && !stamp.contains('.'), "{stamp}");

    // Outside the window: nothing.
    let (_, body) = o
        .get(&window(
            now - chrono::Duration::hours(5),
            now - chrono::Duration::hours(3),
        ))
        .await;
    assert_eq!(parse(&body).children("request_update").count(), 0);
    let (status, _) = o.get(&window(now - chrono::Duration::days(91), now)).await;
    assert_eq!(status, 400, "a window over 90 days is refused");

    // The mySociety extension's own update post, with our reference.
    let sample = std::fs::read_to_string(format!(
        "{}/fixtures/open311/post_servicerequestupdates.request.form",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let body = sample
        .trim()
        .replace("api_key=test", &format!("api_key={}", o.key))
        .replace(
            "service_request_id=1001",
            &format!("service_request_id={id}"),
        );
    let (status, text) = o
        .post_raw(
            "servicerequestupdates.json",
            "application/x-www-form-urlencoded",
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let json: Value = serde_json::from_str(&text).unwrap();
    assert!(json[0]["update_id"].as_str().is_some_and(|s| s != "0"));
    let stored = updates::for_case(
        o.server.store(),
        &cases::get(o.server.store(), &id).await.unwrap().unwrap().id,
    )
    .await
    .unwrap();
    let posted = stored
        .iter()
        .find(|u| u.source == "open311:fixmystreet")
        .unwrap();
    assert_eq!(posted.description, "Update here");
    assert_eq!(posted.source_update_id.as_deref(), Some("123"));
    // The same update again (FixMyStreet lost the answer): answered with the stored update's
    // id, nothing added (issue 18 item 3).
    let (status, text) = o
        .post_raw(
            "servicerequestupdates.json",
            "application/x-www-form-urlencoded",
            body.clone().into_bytes(),
        )
        .await;
    assert_eq!(status, 200, "{text}");
    let again: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(again[0]["update_id"], json[0]["update_id"]);
    let count = |o: &Open311| {
        let store = o.server.store().clone();
        let id = id.clone();
        async move {
            let case = cases::get(&store, &id).await.unwrap().unwrap();
            updates::for_case(&store, &case.id).await.unwrap().len()
        }
    };
    assert_eq!(count(&o).await, stored.len(), "nothing added");
    // The same update id with other content is refused.
    let changed = body.replace("Update+here", "Something+else");
    assert_ne!(
        changed, body,
        "the fixture's text is form-encoded as expected"
    );
    let (status, text) = o
        .post_raw(
            "servicerequestupdates.xml",
            "application/x-www-form-urlencoded",
            changed.into_bytes(),
        )
        .await;
    assert_eq!(status, 400);
    assert!(text.contains("already exists with other content"), "{text}");
    assert_eq!(count(&o).await, stored.len());
    // A client polling with its key is not sent its own update back.
    let (_, body) = o
        .get(&format!(
            "servicerequestupdates.xml?api_key={}&start_date=2016-08-01T00:00:00Z&end_date=2016-10-01T00:00:00Z",
            o.key
        ))
        .await;
    assert_eq!(parse(&body).children("request_update").count(), 0);
    // Missing fields are each named.
    let (status, text) = o
        .post_form(
            "servicerequestupdates.xml",
            &[("api_key", &o.key), ("service_request_id", &id)],
        )
        .await;
    assert_eq!(status, 400);
    for field in ["update_id", "status", "updated_datetime", "description"] {
        assert!(
            text.contains(&format!("{field}: is required")),
            "{field}: {text}"
        );
    }
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
