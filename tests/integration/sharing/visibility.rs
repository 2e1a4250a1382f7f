//! What each partner sees of a shared case, asked every way (query, list, filters, history),
//! against what its agreement grants.

use super::*;

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
