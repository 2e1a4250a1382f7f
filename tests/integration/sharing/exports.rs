//! CSV exports through the same agreement, redaction and disclosure log as queries.

use super::*;

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
