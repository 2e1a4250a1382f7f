//! Partner sharing: agreements decide, on every read path, exactly what a partner sees.

use std::time::Duration;

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use junction_domain::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{SmtpSink, TestDb, TestServer, code, data, eventually, junction_bin};

mod exports;
mod notices;
mod probing;
mod random_documents;
mod revocation;
mod rules;
pub(crate) mod subscriptions;
mod visibility;

/// Marker values: if one appears in a partner's response where it should not, the test fails.
const PERSONAL: &str = "PERSONAL-7f3a";
const SENSITIVE: &str = "SENSITIVE-91bc";
const UNSHARED: &str = "UNSHARED-c0de";
const NOTE: &str = "NOTE-5e11";

const SHARING: &str = r#"
[[agencies]]
id = "fire"
name = "Fire and Rescue"
kind = "partner"

[[agencies]]
id = "health"
name = "Health Board"
kind = "partner"

[[agencies]]
id = "trading"
name = "Regional Trading Standards"
kind = "partner"

[[agencies]]
id = "ambulance"
name = "Ambulance Trust"
kind = "partner"

[[case_types]]
code = "FOOD"
name = "Food hygiene complaint"
agency = "highways"
published = true
  [[case_types.fields]]
  code = "risk"
  description = "Risk"
  datatype = "singlevaluelist"
  classification = "public"
  values = [{ key = "high", name = "High" }, { key = "low", name = "Low" }]
  [[case_types.fields]]
  code = "premises"
  description = "Premises"
  datatype = "string"
  classification = "official"
  [[case_types.fields]]
  code = "contact_notes"
  description = "How to reach the complainant"
  datatype = "string"
  classification = "personal"
  [[case_types.fields]]
  code = "symptoms"
  description = "Symptoms"
  datatype = "string"
  classification = "sensitive"

[sharing]
purposes = ["crime_prevention", "public_health", "fire_safety", "consumer_protection"]

[[sharing.rules]]
name = "high risk food to the police"
agreement = "police-food"
when = { field = "fields.risk", eq = "high" }
notify = true

[[agreements]]
id = "police-food"
title = "Food crime"
partner = "police"
case_types = ["FOOD"]
purposes = ["crime_prevention"]
lawful_basis = "Crime and Disorder Act 1998 s115"
ceiling = "official"
valid_from = 2020-01-01

[[agreements]]
id = "fire-food"
title = "Fire safety at food premises"
partner = "fire"
case_types = ["FOOD"]
purposes = ["fire_safety"]
lawful_basis = "Fire and Rescue Services Act 2004"
ceiling = "personal"
valid_from = 2020-01-01

[[agreements]]
id = "health-food"
title = "Outbreak control"
partner = "health"
case_types = ["FOOD"]
purposes = ["public_health"]
lawful_basis = "Health Protection (Notification) Regulations 2010"
ceiling = "sensitive"
valid_from = 2020-01-01

[[agreements]]
id = "trading-food"
title = "Consumer protection"
partner = "trading"
case_types = ["FOOD"]
purposes = ["consumer_protection"]
lawful_basis = "Consumer Rights Act 2015"
ceiling = "public"
fields = ["fields.risk", "description"]
valid_from = 2020-01-01
"#;

async fn server() -> TestServer {
    TestServer::start(SHARING).await
}

async fn create_food(s: &TestServer, risk: &str, description: &str) -> (String, String) {
    let officer = s.token(&[Role::Officer]);
    let (_, body) = s
        .gql(
            Some(&officer),
            "mutation($input: CreateCaseInput!) { createCase(input: $input) { id reference } }",
            json!({"input": {
                "caseType": "FOOD",
                "description": description,
                "location": {"address": "1 High Street"},
                "submitter": {"name": format!("Name {PERSONAL}"), "email": "a@example.org", "phone": "01632 960000"},
                "fields": {"risk": risk, "premises": "Cafe Rouge", "contact_notes": format!("call {PERSONAL}"), "symptoms": format!("ill {SENSITIVE}")}
            }}),
        )
        .await;
    let c = &data(&body)["createCase"];
    assert!(c["id"].is_string(), "{body}");
    (
        c["id"].as_str().unwrap().to_string(),
        c["reference"].as_str().unwrap().to_string(),
    )
}

async fn share(s: &TestServer, case: &str, agency: &str) {
    let officer = s.token(&[Role::Officer]);
    let (_, body) = s
        .gql(
            Some(&officer),
            "mutation($c: ID!, $a: String!) { shareCase(caseId: $c, agency: $a, reason: \"joint visit\") { agency agreement live } }",
            json!({"c": case, "a": agency}),
        )
        .await;
    assert_eq!(data(&body)["shareCase"]["live"], true, "{body}");
}

fn partner(s: &TestServer, agency: &str) -> String {
    s.token_for(&format!("{agency}-user"), Some(agency), &[Role::Partner])
}

const CASE_QUERY: &str = r#"query($id: ID!, $p: String) { case(id: $id, purpose: $p) {
    reference status description agencyId redacted fields
    submitter { name email phone } location { address }
    history { kind data redacted } } }"#;

async fn note_on(s: &TestServer, token: &str, case: &str, text: &str) {
    let (_, body) = s
        .gql(
            Some(token),
            "mutation($id: ID!, $n: String!) { addCaseNote(id: $id, note: $n) { id } }",
            json!({"id": case, "n": text}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
}

#[tokio::test]
async fn staff_sort_by_any_attribute_with_offset_cursors() {
    let s = server().await;
    for risk in ["low", "high", "low", "high", "low"] {
        create_food(&s, risk, "sorted").await;
    }
    let officer = s.token(&[Role::Officer]);
    let q = r#"query($after: String) { cases(first: 2, after: $after, filter: {caseType: "FOOD"},
        orderBy: {by: FIELD, field: "risk", direction: ASC}) {
        totalCount pageInfo { hasNextPage endCursor } edges { node { id fields } } } }"#;
    let mut after: Option<String> = None;
    let mut seen = Vec::new();
    loop {
        let (_, body) = s.gql(Some(&officer), q, json!({"after": after})).await;
        let page = &data(&body)["cases"];
        assert_eq!(page["totalCount"], 5, "{body}");
        for e in page["edges"].as_array().unwrap() {
            seen.push((
                e["node"]["fields"]["risk"].as_str().unwrap().to_string(),
                e["node"]["id"].as_str().unwrap().to_string(),
            ));
        }
        if page["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = page["pageInfo"]["endCursor"].as_str().map(String::from);
    }
    let risks: Vec<&str> = seen.iter().map(|(r, _)| r.as_str()).collect();
    assert_eq!(risks, ["high", "high", "low", "low", "low"]);
    let mut ids: Vec<&String> = seen.iter().map(|(_, id)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 5, "no case twice across pages");
    let (_, body) = s
        .gql(
            Some(&officer),
            "{ cases(orderBy: {by: FIELD}) { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body.to_string().contains("orderBy.field"), "{body}");
    s.stop().await;
}
