//! Partner sharing: agreements decide, on every read path, exactly what a partner sees.

use std::time::Duration;

use chrono::Utc;
use futures::{SinkExt, StreamExt};
use junction_domain::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{SmtpSink, TestDb, TestServer, code, data, eventually, junction_bin};

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

/// What a partner in a given agreement state may see, asked every way.
struct Row {
    agency: &'static str,
    purpose: &'static str,
    /// `None`: no access at all (the error code expected instead).
    sees: Option<Visible>,
    refused: &'static str,
}

struct Visible {
    fields: &'static [&'static str],
    submitter: bool,
    description: bool,
    note: bool,
}

#[tokio::test]
async fn partners_see_exactly_what_their_agreement_grants_on_every_path() {
    let s = server().await;
    let (shared, shared_ref) = create_food(&s, "low", "rats in the kitchen").await;
    let (unshared, _) = create_food(&s, "low", UNSHARED).await;
    for agency in ["police", "fire", "health", "trading"] {
        share(&s, &shared, agency).await;
    }
    let officer = s.token(&[Role::Officer]);
    let (_, body) = s
        .gql(
            Some(&officer),
            "mutation($id: ID!, $n: String!) { addCaseNote(id: $id, note: $n) { id } }",
            json!({"id": shared, "n": NOTE}),
        )
        .await;
    assert!(body["errors"].is_null(), "{body}");
    // Health's agreement is suspended at run time: no restart.
    let admin = s.token(&[Role::Admin]);
    let (_, body) = s
        .gql(
            Some(&admin),
            r#"mutation { suspendAgreement(id: "health-food", reason: "under review") { state } }"#,
            json!({}),
        )
        .await;
    assert_eq!(
        data(&body)["suspendAgreement"]["state"],
        "SUSPENDED",
        "{body}"
    );
    // Fire's agreement expires a moment from now, and takes effect by itself.
    let soon = (Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let (_, body) = s
        .gql(
            Some(&admin),
            r#"mutation($to: DateTime!) { saveAgreement(input: {id: "fire-expiring", jurisdiction: "borsetshire",
                title: "Short", partner: "ambulance", caseTypes: ["FOOD"], purposes: ["fire_safety"],
                lawfulBasis: "test", ceiling: PERSONAL, validFrom: "2020-01-01T00:00:00Z", validTo: $to}) { state } }"#,
            json!({"to": soon}),
        )
        .await;
    assert_eq!(data(&body)["saveAgreement"]["state"], "ACTIVE", "{body}");
    share(&s, &shared, "ambulance").await;
    tokio::time::sleep(Duration::from_millis(1700)).await;

    let rows = [
        Row {
            agency: "police",
            purpose: "crime_prevention",
            sees: Some(Visible {
                fields: &["premises", "risk"],
                submitter: false,
                description: true,
                note: true,
            }),
            refused: "",
        },
        Row {
            agency: "fire",
            purpose: "fire_safety",
            sees: Some(Visible {
                fields: &["contact_notes", "premises", "risk"],
                submitter: true,
                description: true,
                note: true,
            }),
            refused: "",
        },
        Row {
            agency: "trading",
            purpose: "consumer_protection",
            sees: Some(Visible {
                fields: &["risk"],
                submitter: false,
                // Official, above a public ceiling, though the allow-list names it.
                description: false,
                note: false,
            }),
            refused: "",
        },
        // Suspended, expired, none at all, and a purpose its agreement does not allow.
        Row {
            agency: "health",
            purpose: "public_health",
            sees: None,
            refused: "FORBIDDEN",
        },
        Row {
            agency: "ambulance",
            purpose: "fire_safety",
            sees: None,
            refused: "FORBIDDEN",
        },
        Row {
            agency: "highways-contractor",
            purpose: "crime_prevention",
            sees: None,
            refused: "FORBIDDEN",
        },
        Row {
            agency: "police",
            purpose: "public_health",
            sees: None,
            refused: "FORBIDDEN",
        },
    ];
    for row in &rows {
        let token = partner(&s, row.agency);
        let who = format!("{} for {}", row.agency, row.purpose);
        // Query and nested fields.
        let (_, body) = s
            .gql(
                Some(&token),
                CASE_QUERY,
                json!({"id": shared, "p": row.purpose}),
            )
            .await;
        let text = body.to_string();
        assert!(!text.contains(UNSHARED), "{who}: {text}");
        let Some(v) = &row.sees else {
            assert_eq!(code(&body), Some(row.refused), "{who}: {body}");
            assert!(!text.contains(PERSONAL) && !text.contains(SENSITIVE) && !text.contains(NOTE));
            // List and count are refused the same way.
            let (_, list) = s
                .gql(
                    Some(&token),
                    "query($p: String) { cases(purpose: $p) { totalCount } }",
                    json!({"p": row.purpose}),
                )
                .await;
            assert_eq!(code(&list), Some(row.refused), "{who}: {list}");
            continue;
        };
        assert!(body["errors"].is_null(), "{who}: {body}");
        let c = &data(&body)["case"];
        assert_eq!(c["reference"], shared_ref.as_str());
        let mut keys: Vec<&str> = c["fields"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort();
        assert_eq!(keys, v.fields, "{who}: {body}");
        assert!(!text.contains(SENSITIVE), "{who}: {text}");
        assert_eq!(c["submitter"]["email"].is_string(), v.submitter, "{who}");
        assert_eq!(c["submitter"]["name"].is_string(), v.submitter, "{who}");
        assert_eq!(c["description"].is_string(), v.description, "{who}");
        let redacted: Vec<&str> = c["redacted"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect();
        assert!(redacted.contains(&"fields.symptoms"), "{who}: {redacted:?}");
        assert_eq!(
            redacted.contains(&"submitter.email"),
            !v.submitter,
            "{who}: {redacted:?}"
        );
        // Nested: history shows the note (or marks it redacted), and never internal plumbing
        // or another partner's share.
        let history = c["history"].as_array().unwrap();
        assert!(history.iter().all(|e| e["kind"] != "ROUTED"), "{who}");
        let shares: Vec<&Value> = history.iter().filter(|e| e["kind"] == "SHARED").collect();
        assert_eq!(
            shares.len(),
            1,
            "{who} sees only its own share: {history:?}"
        );
        assert_eq!(shares[0]["data"]["agency"], row.agency);
        let note = history.iter().find(|e| e["kind"] == "NOTE_ADDED").unwrap();
        assert_eq!(note["data"]["note"] == NOTE, v.note, "{who}: {note}");
        assert_eq!(text.contains(NOTE), v.note, "{who}");
        // An unshared case is NOT_FOUND, word for word as a case that does not exist.
        let (_, missing) = s
            .gql(
                Some(&token),
                CASE_QUERY,
                json!({"id": unshared, "p": row.purpose}),
            )
            .await;
        let (_, nonexistent) = s
            .gql(
                Some(&token),
                CASE_QUERY,
                json!({"id": "no-such-case", "p": row.purpose}),
            )
            .await;
        assert_eq!(code(&missing), Some("NOT_FOUND"), "{who}: {missing}");
        assert_eq!(
            missing["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace(&unshared, "X"),
            nonexistent["errors"][0]["message"]
                .as_str()
                .unwrap()
                .replace("no-such-case", "X"),
        );
        // List and count leave the unshared case out.
        let (_, list) = s
            .gql(
                Some(&token),
                "query($p: String) { cases(purpose: $p) { totalCount edges { node { id description } } } }",
                json!({"p": row.purpose}),
            )
            .await;
        assert_eq!(data(&list)["cases"]["totalCount"], 1, "{who}: {list}");
        assert!(!list.to_string().contains(UNSHARED), "{who}");
        // Filters: on something shown, fine; on something hidden, FORBIDDEN without the value.
        let (_, ok) = s
            .gql(
                Some(&token),
                r#"query($p: String) { cases(purpose: $p, filter: {fields: [{code: "risk", value: "low"}]}) { totalCount } }"#,
                json!({"p": row.purpose}),
            )
            .await;
        assert_eq!(data(&ok)["cases"]["totalCount"], 1, "{who}: {ok}");
        let (_, hidden) = s
            .gql(
                Some(&token),
                r#"query($p: String) { cases(purpose: $p, filter: {fields: [{code: "symptoms", value: "ill SENSITIVE-91bc"}]}) { totalCount } }"#,
                json!({"p": row.purpose}),
            )
            .await;
        assert_eq!(code(&hidden), Some("FORBIDDEN"), "{who}: {hidden}");
        assert!(!hidden.to_string().contains("ill SENSITIVE"), "{who}");
        let (_, by_email) = s
            .gql(
                Some(&token),
                r#"query($p: String) { cases(purpose: $p, filter: {submitterEmail: "a@example.org"}) { totalCount } }"#,
                json!({"p": row.purpose}),
            )
            .await;
        assert_eq!(
            code(&by_email) == Some("FORBIDDEN"),
            !v.submitter,
            "{who}: {by_email}"
        );
        // Sorting: the same rule as filtering.
        for (order, allowed) in [
            ("{by: FIELD, field: \"risk\"}", true),
            ("{by: CREATED_AT, direction: ASC}", true),
            ("{by: FIELD, field: \"symptoms\"}", false),
            ("{by: SUBMITTER_NAME}", v.submitter),
            ("{by: DESCRIPTION}", v.description),
        ] {
            let (_, sorted) = s
                .gql(
                    Some(&token),
                    &format!("query($p: String) {{ cases(purpose: $p, orderBy: {order}) {{ totalCount }} }}"),
                    json!({"p": row.purpose}),
                )
                .await;
            assert_eq!(
                code(&sorted) != Some("FORBIDDEN"),
                allowed,
                "{who} sorting by {order}: {sorted}"
            );
        }
    }

    // Purpose is required of partners, by argument or header.
    let police = partner(&s, "police");
    let (_, body) = s
        .gql(Some(&police), "{ cases { totalCount } }", json!({}))
        .await;
    assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{body}");
    let resp = s
        .client
        .post(format!("{}/graphql", s.base))
        .bearer_auth(&police)
        .header("junction-purpose", "crime_prevention")
        .json(&json!({"query": "{ cases { totalCount } }"}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(data(&body)["cases"]["totalCount"], 1, "{body}");

    // Staff see everything; partners may not see who else a case is shared with.
    for role in [Role::Officer, Role::Auditor] {
        let (_, body) = s
            .gql(Some(&s.token(&[role])), CASE_QUERY, json!({"id": shared}))
            .await;
        assert!(body.to_string().contains(SENSITIVE), "{role:?}");
    }
    let (_, body) = s
        .gql(
            Some(&police),
            "query($id: ID!) { case(id: $id, purpose: \"crime_prevention\") { shares { agency } } }",
            json!({"id": shared}),
        )
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body}");

    // Disclosures: fire was shown personal data (submitter, contact notes), police was not.
    let auditor = s.token(&[Role::Auditor]);
    let (_, body) = s
        .gql(
            Some(&auditor),
            "query($id: ID!) { disclosures(caseId: $id) { actor partnerAgency agreement purpose fields caseReference } }",
            json!({"id": shared}),
        )
        .await;
    let list = data(&body)["disclosures"].as_array().unwrap().clone();
    assert!(!list.is_empty(), "{body}");
    assert!(list.iter().all(|d| d["partnerAgency"] == "fire"), "{body}");
    let first = &list[0];
    assert_eq!(first["agreement"], "fire-food");
    assert_eq!(first["purpose"], "fire_safety");
    assert_eq!(first["actor"], "fire-user");
    let fields: Vec<&str> = first["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        vec![
            "fields.contact_notes",
            "submitter.email",
            "submitter.name",
            "submitter.phone"
        ]
    );
    assert!(
        !body.to_string().contains(PERSONAL),
        "the log holds paths, not values"
    );
    // And the audit chain still verifies with disclosure records in it.
    let report = junction_store::audit::verify(s.store()).await.unwrap();
    assert!(report.first_bad.is_none(), "{:?}", report.first_bad);
    s.stop().await;
}

#[tokio::test]
async fn rules_share_automatically_and_every_share_is_an_event() {
    let s = server().await;
    let (high, _) = create_food(&s, "high", "high risk").await;
    let (low, _) = create_food(&s, "low", "low risk").await;
    let police = partner(&s, "police");
    let q = "query($p: String) { cases(purpose: $p) { totalCount edges { node { id } } } }";
    let (_, body) = s
        .gql(Some(&police), q, json!({"p": "crime_prevention"}))
        .await;
    assert_eq!(data(&body)["cases"]["totalCount"], 1, "{body}");
    assert_eq!(
        data(&body)["cases"]["edges"][0]["node"]["id"],
        high.as_str()
    );

    let officer = s.token(&[Role::Officer]);
    let (_, body) = s
        .gql(
            Some(&officer),
            "query($id: ID!) { case(id: $id) { shares { agency agreement rule reason live } history { kind data } } }",
            json!({"id": high}),
        )
        .await;
    let c = &data(&body)["case"];
    assert_eq!(
        c["shares"][0]["rule"], "high risk food to the police",
        "{body}"
    );
    assert!(
        c["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "SHARED" && e["data"]["agency"] == "police")
    );
    // Unshare by hand, with a reason; the partner loses the case at once.
    let (_, body) = s
        .gql(
            Some(&officer),
            "mutation($id: ID!) { unshareCase(caseId: $id, agency: \"police\", reason: \"closed\") { live unshareReason } }",
            json!({"id": high}),
        )
        .await;
    assert_eq!(data(&body)["unshareCase"]["live"], false, "{body}");
    let (_, body) = s
        .gql(Some(&police), q, json!({"p": "crime_prevention"}))
        .await;
    assert_eq!(data(&body)["cases"]["totalCount"], 0, "{body}");
    // Sharing with a partner that has no agreement for the case type is refused, naming why.
    let (_, body) = s
        .gql(
            Some(&officer),
            "mutation($id: ID!) { shareCase(caseId: $id, agency: \"ambulance\", reason: \"x\") { live } }",
            json!({"id": low}),
        )
        .await;
    assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body.to_string().contains("no active agreement"), "{body}");
    // A partner may not share.
    let (_, body) = s
        .gql(
            Some(&police),
            "mutation($id: ID!) { shareCase(caseId: $id, agency: \"police\", reason: \"x\") { live } }",
            json!({"id": low}),
        )
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"), "{body}");
    s.stop().await;
}

#[tokio::test]
async fn bad_agreements_are_config_errors_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let bad = format!(
        "{}\n{SHARING}\n{}",
        crate::support::CATALOGUE,
        r#"
[[agreements]]
id = "police-food-2"
title = "Overlapping"
partner = "police"
case_types = ["FOOD", "NOPE"]
purposes = ["crime_prevention", "marketing"]
lawful_basis = "x"
ceiling = "sensitive"
valid_from = 2021-01-01

[[agreements]]
id = "ghost"
title = "Unknown partner"
partner = "nobody"
case_types = ["FOOD"]
purposes = ["crime_prevention"]
lawful_basis = "x"
ceiling = "public"
valid_from = 2021-01-01
"#
    );
    let path = crate::support::write_config(&dir, "sqlite::memory:", "", &bad);
    let err = junction_server::config::load(&path)
        .unwrap_err()
        .to_string();
    for expected in [
        "agreements[4].case_types[1]",
        "`NOPE` is not a case type",
        "agreements[4].purposes[1]",
        "`marketing` is not a configured purpose",
        "overlaps agreement `police-food`",
        "agreements[5].partner",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}

/// A graphql-transport-ws client.
struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    async fn connect(s: &TestServer, token: &str, purpose: &str) -> Ws {
        let url = format!("{}/graphql", s.base.replace("http://", "ws://"));
        let mut request = url.into_client_request().unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        stream
            .send(Message::text(
                json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}"), "purpose": purpose}})
                    .to_string(),
            ))
            .await
            .unwrap();
        let mut ws = Ws { stream };
        let ack = ws.next_json().await;
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        ws
    }

    async fn subscribe(&mut self, after: Option<&str>) {
        let query = "subscription($after: ID) { sharedCaseEvents(after: $after) { id kind data redacted case { reference fields submitter { email } } } }";
        self.stream
            .send(Message::text(
                json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
                    .to_string(),
            ))
            .await
            .unwrap();
    }

    async fn next_json(&mut self) -> Value {
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(10), self.stream.next())
                .await
                .expect("a message within 10 s")
                .expect("connection open")
                .expect("a frame");
            match msg {
                Message::Text(t) => return serde_json::from_str(&t).unwrap(),
                Message::Close(frame) => {
                    return json!({"type": "close", "code": frame.map(|f| u16::from(f.code))});
                }
                _ => continue,
            }
        }
    }

    /// The close frame, after at most a `complete` for the open subscription.
    async fn closing(&mut self) -> Value {
        let mut msg = self.next_json().await;
        if msg["type"] == "complete" {
            msg = self.next_json().await;
        }
        assert_eq!(msg["type"], "close", "{msg}");
        msg
    }

    /// The next event's payload.
    async fn event(&mut self) -> Value {
        let msg = self.next_json().await;
        assert_eq!(msg["type"], "next", "{msg}");
        msg["payload"]["data"]["sharedCaseEvents"].clone()
    }
}

#[tokio::test]
async fn subscriptions_deliver_redacted_events_and_resume_without_gaps() {
    let s = server().await;
    let (case, reference) = create_food(&s, "low", "mice").await;
    let officer = s.token(&[Role::Officer]);
    let police = partner(&s, "police");
    let mut ws = Ws::connect(&s, &police, "crime_prevention").await;
    ws.subscribe(None).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    share(&s, &case, "police").await;
    let shared = ws.event().await;
    assert_eq!(shared["kind"], "SHARED", "{shared}");
    assert_eq!(shared["case"]["reference"], reference.as_str());
    assert!(shared["case"]["submitter"]["email"].is_null(), "{shared}");
    assert!(!shared.to_string().contains(SENSITIVE));
    let note = |n: &'static str| {
        let s = &s;
        let officer = officer.clone();
        let case = case.clone();
        async move {
            s.gql(
                Some(&officer),
                "mutation($id: ID!, $n: String!) { addCaseNote(id: $id, note: $n) { id } }",
                json!({"id": case, "n": n}),
            )
            .await
        }
    };
    note("first note").await;
    let first = ws.event().await;
    assert_eq!(first["kind"], "NOTE_ADDED");
    assert_eq!(first["data"]["note"], "first note");
    let last_seen = first["id"].as_str().unwrap().to_string();
    drop(ws);

    // While the partner is away: two notes and a status change.
    note("second note").await;
    note("third note").await;
    s.gql(
        Some(&officer),
        "mutation($id: ID!) { changeCaseStatus(id: $id, status: INVESTIGATING) { status } }",
        json!({"id": case}),
    )
    .await;
    // Another case, not shared: nothing of it may arrive.
    let (other, _) = create_food(&s, "low", UNSHARED).await;
    note_on(&s, &officer, &other, UNSHARED).await;

    let mut ws = Ws::connect(&s, &police, "crime_prevention").await;
    ws.subscribe(Some(&last_seen)).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(ws.event().await);
    }
    let kinds: Vec<&str> = got.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["NOTE_ADDED", "NOTE_ADDED", "STATUS_CHANGED"]);
    assert_eq!(got[0]["data"]["note"], "second note");
    assert_eq!(got[1]["data"]["note"], "third note");
    let ids: Vec<i64> = got
        .iter()
        .map(|e| e["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    // Live again after the replay, with no duplicate.
    note("fourth note").await;
    let live = ws.event().await;
    assert_eq!(live["data"]["note"], "fourth note", "{live}");
    assert!(!live.to_string().contains(UNSHARED));

    // Suspending the agreement closes the connection.
    let admin = s.token(&[Role::Admin]);
    s.gql(
        Some(&admin),
        r#"mutation { suspendAgreement(id: "police-food", reason: "review") { state } }"#,
        json!({}),
    )
    .await;
    let closed = ws.closing().await;
    assert_eq!(closed["code"], 4403, "{closed}");
    s.stop().await;
}

impl Ws {
    async fn subscribe_as(&mut self, id: &str, after: Option<&str>) {
        let query = "subscription($after: ID) { sharedCaseEvents(after: $after) { id kind data redacted case { reference fields submitter { email } } } }";
        self.stream
            .send(Message::text(
                json!({"id": id, "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
                    .to_string(),
            ))
            .await
            .unwrap();
    }

    /// Nothing arrives for `wait`.
    async fn quiet(&mut self, wait: Duration) -> bool {
        tokio::time::timeout(wait, self.stream.next())
            .await
            .is_err()
    }
}

#[tokio::test]
async fn subscribers_alike_share_one_execution_yet_each_is_served_as_itself() {
    let s = server().await;
    let (case, reference) = create_food(&s, "low", "rats").await;
    let officer = s.token(&[Role::Officer]);
    let fire_a = s.token_for("fire-a", Some("fire"), &[Role::Partner]);
    let fire_b = s.token_for("fire-b", Some("fire"), &[Role::Partner]);
    let police = partner(&s, "police");
    // Two fire users alike (one cohort), a police user and a council officer (cohorts of their
    // own: what they may see differs).
    let mut a = Ws::connect(&s, &fire_a, "fire_safety").await;
    a.subscribe(None).await;
    let mut b = Ws::connect(&s, &fire_b, "fire_safety").await;
    b.subscribe(None).await;
    let mut p = Ws::connect(&s, &police, "crime_prevention").await;
    p.subscribe(None).await;
    let mut staff = Ws::connect(&s, &officer, "crime_prevention").await;
    staff.subscribe(None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    share(&s, &case, "fire").await;
    share(&s, &case, "police").await;
    note_on(&s, &officer, &case, "n1").await;

    let (a1, a2) = (a.event().await, a.event().await);
    let (b1, b2) = (b.event().await, b.event().await);
    assert_eq!((&a1, &a2), (&b1, &b2), "one cohort, one rendering");
    assert_eq!(a1["kind"], "SHARED", "{a1}");
    assert_eq!(a1["case"]["reference"], reference.as_str());
    // The fire agreement's ceiling is personal: contact notes shown, symptoms not.
    assert!(a1.to_string().contains(PERSONAL), "{a1}");
    assert!(!a1.to_string().contains(SENSITIVE), "{a1}");
    assert_eq!(a2["data"]["note"], "n1", "{a2}");
    let (p1, p2) = (p.event().await, p.event().await);
    assert_eq!(p1["kind"], "SHARED", "{p1}");
    assert_eq!(
        p1["data"]["agency"], "police",
        "a partner hears only of its own share"
    );
    assert!(!p1.to_string().contains(PERSONAL), "{p1}");
    assert_eq!(p2["data"]["note"], "n1", "{p2}");
    let staff_kinds: Vec<Value> = vec![
        staff.event().await,
        staff.event().await,
        staff.event().await,
    ];
    assert_eq!(
        staff_kinds
            .iter()
            .map(|e| e["kind"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["SHARED", "SHARED", "NOTE_ADDED"]
    );
    assert!(
        staff_kinds[0].to_string().contains(SENSITIVE),
        "staff see everything"
    );

    // One member leaves; the rest go on, and a third fire user resumes from the share.
    a.stream
        .send(Message::text(
            json!({"id": "1", "type": "complete"}).to_string(),
        ))
        .await
        .unwrap();
    let mut c = Ws::connect(
        &s,
        &s.token_for("fire-c", Some("fire"), &[Role::Partner]),
        "fire_safety",
    )
    .await;
    c.subscribe(a1["id"].as_str()).await;
    let replayed = c.event().await;
    assert_eq!(replayed["data"]["note"], "n1", "{replayed}");
    note_on(&s, &officer, &case, "n2").await;
    note_on(&s, &officer, &case, "n3").await;
    for ws in [&mut b, &mut c] {
        let (x, y) = (ws.event().await, ws.event().await);
        assert_eq!(
            (x["data"]["note"].as_str(), y["data"]["note"].as_str()),
            (Some("n2"), Some("n3"))
        );
        assert!(
            x["id"].as_str().unwrap().parse::<i64>().unwrap()
                > a2["id"].as_str().unwrap().parse::<i64>().unwrap()
        );
    }
    assert!(
        a.quiet(Duration::from_millis(500)).await,
        "a completed subscription stays quiet"
    );
    assert!(
        c.quiet(Duration::from_millis(300)).await,
        "no duplicate after the replay"
    );

    // Each member's disclosures are on the record under its own name.
    let auditor = s.token(&[Role::Auditor]);
    let (_, body) = s
        .gql(
            Some(&auditor),
            "query($c: ID!) { disclosures(caseId: $c) { actor agreement fields } }",
            json!({"c": case}),
        )
        .await;
    let actors: Vec<&str> = data(&body)["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["actor"].as_str().unwrap())
        .collect();
    for who in ["fire-a", "fire-b", "fire-c"] {
        assert!(actors.contains(&who), "{who} missing from {body}");
    }
    assert!(!actors.iter().any(|a| a.starts_with("police")), "{body}");

    // A second subscription under an id still in use closes the connection.
    b.subscribe_as("1", None).await;
    let closed = b.closing().await;
    assert_eq!(closed["code"], 4409, "{closed}");
    // Shutting down closes open subscriptions rather than waiting on them.
    s.stop().await;
    let closed = loop {
        let msg = p.next_json().await;
        if msg["type"] == "close" {
            break msg;
        }
        assert_eq!(msg["type"], "next", "{msg}");
    };
    assert_eq!(closed["code"], 1001, "{closed}");
}

/// `GET /export/cases.csv` as `token`, with `query`: the status and the body.
async fn export(s: &TestServer, token: Option<&str>, query: &str) -> (u16, String) {
    let mut req = reqwest::Client::new().get(format!("{}/export/cases.csv?{query}", s.base));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

/// The rows of a CSV export, by column name.
fn rows(csv: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    lines
        .map(|l| {
            // The test data has no commas or quotes inside cells.
            header
                .iter()
                .zip(l.split(','))
                .map(|(h, v)| (h.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

#[tokio::test]
async fn exports_show_a_partner_what_its_agreement_grants_and_log_what_they_disclose() {
    let s = server().await;
    let (shared, reference) = create_food(&s, "low", "rats in the kitchen").await;
    let (_, _) = create_food(&s, "low", UNSHARED).await;
    let (formula, _) = create_food(&s, "low", "=HYPERLINK(\"http://evil.example\")").await;
    share(&s, &shared, "police").await;
    share(&s, &shared, "fire").await;
    share(&s, &formula, "police").await;
    let police = partner(&s, "police");
    let fire = partner(&s, "fire");

    // The police agreement's ceiling is official: no personal or sensitive value, and only the
    // shared cases.
    let (status, body) = export(&s, Some(&police), "purpose=crime_prevention").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        !body.contains(PERSONAL) && !body.contains(SENSITIVE),
        "{body}"
    );
    assert!(!body.contains(UNSHARED), "{body}");
    let police_rows = rows(&body);
    assert_eq!(police_rows.len(), 2, "{body}");
    let row = police_rows
        .iter()
        .find(|r| r["reference"] == reference)
        .unwrap();
    assert_eq!(row["description"], "rats in the kitchen");
    assert_eq!(
        row["submitter_email"], "",
        "hidden attributes are empty cells"
    );
    assert_eq!(row["fields.symptoms"], "");
    assert_eq!(row["fields.premises"], "Cafe Rouge");
    for hidden in ["submitter.email", "fields.contact_notes", "fields.symptoms"] {
        assert!(row["redacted"].contains(hidden), "{hidden} in {row:?}");
    }
    // A cell a spreadsheet would run as a formula is made inert.
    assert!(
        body.contains("'=HYPERLINK"),
        "formula cell prefixed: {body}"
    );

    // Fire's ceiling is personal: contact notes, not symptoms; and the disclosure is logged.
    let (status, body) = export(&s, Some(&fire), "purpose=fire_safety&status=open").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(PERSONAL) && !body.contains(SENSITIVE),
        "{body}"
    );
    assert_eq!(rows(&body).len(), 1, "{body}");
    let auditor = s.token(&[Role::Auditor]);
    let (_, log) = s
        .gql(
            Some(&auditor),
            "query($c: ID!) { disclosures(caseId: $c) { actor fields channel } }",
            json!({"c": shared}),
        )
        .await;
    let exported: Vec<&Value> = data(&log)["disclosures"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["channel"] == "export")
        .collect();
    assert_eq!(exported.len(), 1, "{log}");
    assert_eq!(exported[0]["actor"], "fire-user");
    assert!(
        exported[0]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "fields.contact_notes"),
        "{log}"
    );

    // Staff export everything in full.
    let officer = s.token(&[Role::Officer]);
    let (status, body) = export(&s, Some(&officer), "").await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.contains(SENSITIVE) && body.contains(UNSHARED),
        "{body}"
    );

    // Refusals, each in the API's error format and each audited.
    let (status, body) = export(&s, Some(&police), "").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("BAD_USER_INPUT") && body.contains("purpose"),
        "{body}"
    );
    let (status, body) = export(&s, Some(&police), "purpose=public_health").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("FORBIDDEN"), "{body}");
    let (status, body) = export(&s, None, "purpose=crime_prevention").await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = export(&s, Some(&police), "purpose=crime_prevention&colour=red").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("colour"), "{body}");
    let system = s.token(&[Role::System]);
    let (status, _) = export(&s, Some(&system), "").await;
    assert_eq!(status, 403, "the role table decides who may export");
    let (_, log) = s
        .gql(
            Some(&auditor),
            "{ auditLog(first: 100) { edges { node { actor operationType outcome errorCode } } } }",
            json!({}),
        )
        .await;
    let exports: Vec<&Value> = data(&log)["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["operationType"] == "export")
        .collect();
    assert_eq!(exports.len(), 8, "one record per export: {log}");
    assert_eq!(
        exports.iter().filter(|n| n["outcome"] == "ok").count(),
        3,
        "{log}"
    );
    s.stop().await;
}

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
async fn websocket_connections_need_a_valid_token_and_close_when_it_expires() {
    let s = server().await;
    let url = format!("{}/graphql", s.base.replace("http://", "ws://"));
    let mut request = url.clone().into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (stream, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut ws = Ws { stream };
    ws.stream
        .send(Message::text(
            json!({"type": "connection_init", "payload": {"authorization": "Bearer not-a-token"}})
                .to_string(),
        ))
        .await
        .unwrap();
    let closed = ws.next_json().await;
    assert_eq!(closed["code"], 4403, "{closed}");

    // A token that expires in two seconds closes the connection with 4401.
    let auth = junction_server::app::authenticator(&s.loaded).unwrap();
    let short = auth
        .issue(
            "p",
            Some("police"),
            &[Role::Partner],
            Duration::from_secs(2),
        )
        .unwrap();
    let mut ws = Ws::connect(&s, &short, "crime_prevention").await;
    ws.subscribe(None).await;
    let closed = ws.closing().await;
    assert_eq!(closed["code"], 4401, "{closed}");
    // Both the refused connection and the expiry are on the audit log.
    let auditor = s.token(&[Role::Auditor]);
    let (_, body) = s
        .gql(
            Some(&auditor),
            "{ auditLog(first: 50) { edges { node { actor operationName operationType outcome errorCode } } } }",
            json!({}),
        )
        .await;
    let records: Vec<&Value> = data(&body)["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .collect();
    assert!(
        records.iter().any(|r| r["operationName"] == "connection_init"
            && r["errorCode"] == "UNAUTHENTICATED"),
        "{body}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["operationName"] == "connection_close"
                && r["errorCode"] == "UNAUTHENTICATED"
                && r["actor"] == "p"),
        "{body}"
    );
    assert!(
        records
            .iter()
            .any(|r| r["operationName"] == "sharedCaseEvents" && r["outcome"] == "ok"),
        "{body}"
    );
    s.stop().await;
}

/// A small deterministic generator, so a failing document can be reproduced from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// The named type under any list and non-null wrappers, and whether the outer type is non-null.
fn named(ty: &Value) -> (&str, &str) {
    let mut t = ty;
    while t["name"].is_null() {
        t = &t["ofType"];
    }
    (t["name"].as_str().unwrap(), t["kind"].as_str().unwrap())
}

struct Generator<'a> {
    types: &'a [Value],
    rng: Rng,
    ids: Vec<String>,
}

impl Generator<'_> {
    fn object(&self, name: &str) -> &Value {
        self.types.iter().find(|t| t["name"] == name).unwrap()
    }

    /// A value for an argument, or `None` when this generator cannot make one.
    fn arg(&mut self, name: &str, ty: &Value) -> Option<String> {
        let (tname, _) = named(ty);
        match (name, tname) {
            ("id" | "caseId", _) => {
                let id = self.ids[self.rng.below(self.ids.len())].clone();
                Some(format!("\"{id}\""))
            }
            ("purpose", _) => Some("\"crime_prevention\"".into()),
            ("first", "Int") => Some(format!("{}", 1 + self.rng.below(5))),
            ("filter", "CaseFilterInput") => Some(
                [
                    "{status: OPEN}",
                    "{caseType: \"FOOD\"}",
                    "{fields: [{code: \"risk\", value: \"low\"}]}",
                    "{fields: [{code: \"symptoms\", value: \"x\"}]}",
                    "{submitterEmail: \"a@example.org\"}",
                ][self.rng.below(5)]
                .into(),
            ),
            _ => None,
        }
    }

    fn selection(&mut self, type_name: &str, depth: usize) -> Option<String> {
        let fields: Vec<Value> = self.object(type_name)["fields"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let mut parts = Vec::new();
        for f in &fields {
            if !self.rng.chance(55) {
                continue;
            }
            let name = f["name"].as_str().unwrap();
            let mut args = Vec::new();
            let mut possible = true;
            for a in f["args"].as_array().unwrap() {
                let required = a["type"]["kind"] == "NON_NULL";
                let aname = a["name"].as_str().unwrap();
                if required || self.rng.chance(50) {
                    match self.arg(aname, &a["type"]) {
                        Some(v) => args.push(format!("{aname}: {v}")),
                        None if required => possible = false,
                        None => {}
                    }
                }
            }
            if !possible {
                continue;
            }
            let (tname, kind) = named(&f["type"]);
            let inner = match kind {
                "OBJECT" if depth < 4 => match self.selection(tname, depth + 1) {
                    Some(s) => format!(" {{ {s} }}"),
                    None => continue,
                },
                "OBJECT" | "INTERFACE" | "UNION" => continue,
                _ => String::new(),
            };
            let alias = if self.rng.chance(20) {
                format!("a{}: ", self.rng.below(1000))
            } else {
                String::new()
            };
            let args = if args.is_empty() {
                String::new()
            } else {
                format!("({})", args.join(", "))
            };
            let field = format!("{alias}{name}{args}{inner}");
            if self.rng.chance(15) {
                parts.push(format!("... on {type_name} {{ {field} }}"));
            } else {
                parts.push(field);
            }
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

#[tokio::test]
async fn random_documents_never_show_a_partner_more_than_its_agreement() {
    let s = TestServer::start_with("development = true", SHARING).await;
    let (shared, _) = create_food(&s, "low", "shared case").await;
    let (unshared, _) = create_food(&s, "low", UNSHARED).await;
    share(&s, &shared, "police").await;
    let officer = s.token(&[Role::Officer]);
    note_on(&s, &officer, &unshared, UNSHARED).await;
    let type_ref = "kind name ofType { kind name ofType { kind name ofType { kind name } } }";
    let (_, schema) = s
        .gql(
            Some(&officer),
            &format!(
                "{{ __schema {{ types {{ name kind fields {{ name args {{ name type {{ {type_ref} }} }} type {{ {type_ref} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    let types = data(&schema)["__schema"]["types"]
        .as_array()
        .unwrap()
        .clone();
    let police = partner(&s, "police");
    let mut generator = Generator {
        types: &types,
        rng: Rng(0x5eed_1234_abcd_0001),
        ids: vec![shared.clone(), unshared.clone()],
    };
    let (mut answered, mut with_case) = (0, 0);
    for n in 0..300 {
        let Some(selection) = generator.selection("QueryRoot", 1) else {
            continue;
        };
        let document = format!("query Generated{n} {{ {selection} }}");
        let (_, body) = s.gql(Some(&police), &document, json!({})).await;
        let text = body.to_string();
        for marker in [PERSONAL, SENSITIVE, UNSHARED] {
            assert!(
                !text.contains(marker),
                "document {n} showed `{marker}`:\n{document}\n{text}"
            );
        }
        if !body["data"].is_null() {
            answered += 1;
        }
        if text.contains("shared case") {
            with_case += 1;
        }
    }
    // The generator must actually reach the data, or the test proves nothing.
    assert!(answered > 50, "only {answered} documents answered");
    assert!(
        with_case > 10,
        "only {with_case} documents reached the shared case"
    );
    s.stop().await;
}

/// A `junction serve` process, killed when dropped.
struct Process(std::process::Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn serve_process(dir: &std::path::Path, db: &str, port: u16) -> (Process, String) {
    let config = dir.join(format!("junction-{port}.toml"));
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{}\"\n\n[database]\nurl = \"{db}\"\n\n[workers]\nenabled = false\n\n{}\n{SHARING}",
            dir.display(),
            crate::support::CATALOGUE
        ),
    )
    .unwrap();
    let child = std::process::Command::new(junction_bin())
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(dir)
        .env_remove("JUNCTION_DATABASE_URL")
        .env("JUNCTION_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("junction starts");
    let base = format!("http://127.0.0.1:{port}");
    eventually(60, "junction to be ready", || async {
        reqwest::get(format!("{base}/health/ready"))
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
    (Process(child), base)
}

#[tokio::test]
async fn a_share_made_through_one_process_reaches_a_subscriber_on_another() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    crate::support::init();
    let dir = tempfile::tempdir().unwrap();
    // A first, so it creates the signing secret both read from the shared data directory.
    let (_a, base_a) = serve_process(dir.path(), &db.url, free_port()).await;
    let (_b, base_b) = serve_process(dir.path(), &db.url, free_port()).await;
    let loaded = junction_server::config::load(&dir.path().join(format!(
        "junction-{}.toml",
        base_a.rsplit(':').next().unwrap()
    )))
    .unwrap();
    let auth = junction_server::app::authenticator(&loaded).unwrap();
    let officer = auth
        .issue("officer", None, &[Role::Officer], Duration::from_secs(600))
        .unwrap();
    let police = auth
        .issue(
            "pc",
            Some("police"),
            &[Role::Partner],
            Duration::from_secs(600),
        )
        .unwrap();
    let as_b = TestServer::remote(&base_b, loaded.clone());
    let as_a = TestServer::remote(&base_a, loaded);
    let mut ws = Ws::connect(&as_b, &police, "crime_prevention").await;
    ws.subscribe(None).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Created and shared through process A.
    let (_, body) = as_a
        .gql(
            Some(&officer),
            "mutation($input: CreateCaseInput!) { createCase(input: $input) { id reference } }",
            json!({"input": {"caseType": "FOOD", "description": "seen from B", "location": {"address": "2 Low Road"},
                "fields": {"risk": "low", "symptoms": SENSITIVE}}}),
        )
        .await;
    let case = data(&body)["createCase"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, body) = as_a
        .gql(
            Some(&officer),
            "mutation($c: ID!) { shareCase(caseId: $c, agency: \"police\", reason: \"cross-process\") { live } }",
            json!({"c": case}),
        )
        .await;
    assert_eq!(data(&body)["shareCase"]["live"], true, "{body}");
    let event = ws.event().await;
    assert_eq!(event["kind"], "SHARED", "{event}");
    assert!(!event.to_string().contains(SENSITIVE), "{event}");
    drop(db);
}

#[tokio::test]
async fn share_notices_by_email_show_only_what_the_agreement_allows() {
    let (smtp, port) = SmtpSink::start().await;
    let s = TestServer::start(&format!(
        r#"{SHARING}
[[connectors]]
id = "smtp"
kind = "email"
retry = {{ initial_secs = 1, max_delay_secs = 1, max_age_hours = 1, jitter = 0.0 }}
  [connectors.params]
  smtp_host = "127.0.0.1"
  smtp_port = {port}
  tls = "none"
  from = "junction@borsetshire.example"

[routing]
email_connector = "smtp"

[[agencies]]
id = "fire-control"
name = "Fire Control"
kind = "partner"
email = "control@fire.example"

[[agreements]]
id = "fire-control-food"
title = "Fire safety at food premises"
partner = "fire-control"
case_types = ["FOOD"]
purposes = ["fire_safety"]
lawful_basis = "Fire and Rescue Services Act 2004"
ceiling = "personal"
valid_from = 2020-01-01

[[sharing.rules]]
name = "high risk food to fire control"
agreement = "fire-control-food"
when = {{ field = "fields.risk", eq = "high" }}
notify = true
"#
    ))
    .await;
    let (case, reference) = create_food(&s, "high", "smoke from the fryer").await;
    let mail = eventually(20, "the notice to fire", || {
        let smtp = smtp.clone();
        async move {
            smtp.messages()
                .into_iter()
                .find(|m| m.to.iter().any(|t| t.contains("control@fire.example")))
        }
    })
    .await;
    // Undo quoted-printable's soft line breaks.
    let text = mail.data.replace("=\r\n", "").replace("=\n", "");
    assert!(text.contains("Shared with you"), "{text}");
    assert!(
        text.contains(&format!("Case {reference} has been shared")),
        "{text}"
    );
    assert!(text.contains("fire-control-food"), "{text}");
    // Fire's ceiling is personal: contact notes go, symptoms (sensitive) never do.
    assert!(text.contains(PERSONAL), "{text}");
    assert!(!text.contains(SENSITIVE), "{text}");
    // The police rule also asks to notify, but the police have no address: a dead notice
    // that says so, rather than silence.
    let officer = s.token(&[Role::Officer]);
    let body = eventually(20, "the police notice to be given up", || {
        let s = &s;
        let officer = officer.clone();
        let case = case.clone();
        async move {
            let (_, body) = s
                .gql(
                    Some(&officer),
                    "query($id: ID!) { case(id: $id) { deliveries { kind state agencyId lastError } } }",
                    json!({"id": case}),
                )
                .await;
            let dead = data(&body)["case"]["deliveries"]
                .as_array()?
                .iter()
                .any(|d| d["kind"] == "PARTNER_NOTICE" && d["agencyId"] == "police" && d["state"] == "DEAD");
            dead.then_some(body)
        }
    })
    .await;
    assert!(body.to_string().contains("no email address"), "{body}");
    // The personal values the email showed are on the disclosure log.
    let auditor = s.token(&[Role::Auditor]);
    let (_, body) = s
        .gql(
            Some(&auditor),
            "query($id: ID!) { disclosures(caseId: $id) { partnerAgency channel fields } }",
            json!({"id": case}),
        )
        .await;
    let list = data(&body)["disclosures"].as_array().unwrap();
    assert!(
        list.iter().any(|d| d["partnerAgency"] == "fire-control"
            && d["channel"] == "email"
            && d["fields"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f == "fields.contact_notes")),
        "{body}"
    );
    s.stop().await;
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
