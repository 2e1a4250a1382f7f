//! Share rules share matching cases as they arrive, every share is an event, and a bad agreement is a configuration error naming its key.

use super::*;

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
