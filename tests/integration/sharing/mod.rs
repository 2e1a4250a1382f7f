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
mod probing;
mod revocation;
pub(crate) mod subscriptions;

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
