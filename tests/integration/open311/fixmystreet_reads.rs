//! What FixMyStreet reads back from Junction, as its update poller and its importer read it:
//! status changes that say something, statuses in `<status>` where FixMyStreet looks, an update
//! feed that never contradicts the case, and imports that find reports updated in a window.

use super::*;

/// Status notices: one for every case type, and one case type that says its own.
const NOTICES: &str = r#"
[statuses.fixed]
text = "Our crews have mended this."
external_status_code = "FX"

[open311]
strict_clients = ["webform"]

[[case_types]]
code = "GRAF"
name = "Graffiti"
agency = "highways"
published = true
  [case_types.statuses.fixed]
  text = "The graffiti has been cleaned off."
"#;

fn w3c(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Open311 {
    async fn report(&self, form: &[(&str, &str)]) -> String {
        let (status, body) = self.post_form("requests.xml", form).await;
        assert_eq!(status, 200, "{body}");
        parse(&body)
            .child("request")
            .and_then(|r| r.text_of("service_request_id"))
            .unwrap()
            .to_string()
    }

    async fn set_status(&self, reference: &str, status: &str) {
        let officer = self
            .server
            .token_for("olive", Some("highways"), &[Role::Officer]);
        let (code, resp) = self
            .server
            .gql(
                Some(&officer),
                &format!(
                    "mutation($id: ID!) {{ changeCaseStatus(id: $id, status: {status}) {{ status }} }}"
                ),
                json!({"id": reference}),
            )
            .await;
        assert_eq!(code, 200, "{resp}");
        assert!(resp.get("errors").is_none(), "{resp}");
    }

    /// The updates in the last hour, as `key` polls them (`api_key=` empty for anonymous).
    async fn feed(&self, key: &str) -> Vec<Element> {
        let now = chrono::Utc::now();
        let (status, body) = self
            .get(&format!(
                "servicerequestupdates.xml?jurisdiction_id=borsetshire&api_key={key}&start_date={}&end_date={}",
                w3c(now - chrono::Duration::hours(1)),
                w3c(now + chrono::Duration::minutes(1)),
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        parse(&body).children("request_update").cloned().collect()
    }

    /// `<status>` of case `reference` as `key` reads it.
    async fn status_as(&self, reference: &str, key: &str) -> String {
        let (status, body) = self
            .get(&format!(
                "requests/{reference}.xml?jurisdiction_id=borsetshire&api_key={key}"
            ))
            .await;
        assert_eq!(status, 200, "{body}");
        parse(&body)
            .child("request")
            .and_then(|r| r.text_of("status"))
            .unwrap()
            .to_string()
    }
}

fn of_case<'a>(feed: &'a [Element], reference: &str) -> Vec<&'a Element> {
    feed.iter()
        .filter(|u| u.text_of("service_request_id") == Some(reference))
        .collect()
}

#[tokio::test]
async fn status_changes_say_their_public_text_and_code_never_a_blank_comment() {
    let o = Open311::start_with(NOTICES).await;
    let pothole = o.report(&fms_report(&o.key, "4")).await;
    o.set_status(&pothole, "INVESTIGATING").await;
    o.set_status(&pothole, "FIXED").await;
    let graffiti = o
        .report(&[
            ("jurisdiction_id", "borsetshire"),
            ("api_key", &o.key),
            ("service_code", "GRAF"),
            ("description", "Tags on the bus shelter"),
            ("lat", "50.71"),
            ("long", "-2.44"),
            ("attribute[fixmystreet_id]", "5150"),
        ])
        .await;
    o.set_status(&graffiti, "FIXED").await;

    // FixMyStreet polls with its key; an anonymous poller reads the same public notices.
    for key in [o.key.as_str(), ""] {
        let feed = o.feed(key).await;
        let on_pothole = of_case(&feed, &pothole);
        assert_eq!(on_pothole.len(), 2, "{feed:?}");
        // Nothing configured for `investigating`: its own plain sentence, and no code.
        assert_eq!(on_pothole[0].text_of("status"), Some("investigating"));
        assert_eq!(
            on_pothole[0].text_of("description"),
            Some("The council is investigating this report.")
        );
        assert_eq!(on_pothole[0].text_of("external_status_code"), None);
        // `[statuses.fixed]`: its text and its code.
        assert_eq!(on_pothole[1].text_of("status"), Some("fixed"));
        assert_eq!(
            on_pothole[1].text_of("description"),
            Some("Our crews have mended this.")
        );
        assert_eq!(on_pothole[1].text_of("external_status_code"), Some("FX"));
        // The case type's own notice stands in for the top-level one.
        let on_graffiti = of_case(&feed, &graffiti);
        assert_eq!(
            on_graffiti[0].text_of("description"),
            Some("The graffiti has been cleaned off.")
        );
        assert_eq!(on_graffiti[0].text_of("external_status_code"), None);
    }
}

#[tokio::test]
async fn a_status_that_was_not_applied_is_not_presented_as_the_cases_status() {
    let o = Open311::start_with(NOTICES).await;
    let reference = o.report(&fms_report(&o.key, "4")).await;
    // The citizen says it is fixed; the back-end decides, so the case stays open.
    let (status, body) = o
        .post_form(
            "servicerequestupdates.xml",
            &[
                ("jurisdiction_id", "borsetshire"),
                ("api_key", &o.key),
                ("service_request_id", &reference),
                ("update_id", "71"),
                ("status", "FIXED"),
                ("updated_datetime", &w3c(chrono::Utc::now())),
                ("description", "Looks fixed to me"),
                ("first_name", "Test"),
                ("last_name", "User"),
            ],
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(o.status_as(&reference, "").await, "open");
    // Every other reader of the feed is told the status the case really has.
    let feed = o.feed("").await;
    let updates = of_case(&feed, &reference);
    assert_eq!(updates.len(), 1, "{feed:?}");
    assert_eq!(updates[0].text_of("status"), Some("open"));
    // What the citizen asked for is kept on the update itself.
    let case = cases::get(o.server.store(), &reference)
        .await
        .unwrap()
        .unwrap();
    let stored = updates::for_case(o.server.store(), &case.id).await.unwrap();
    assert_eq!(stored[0].status, Some(junction_domain::CaseStatus::Fixed));
    assert_eq!(stored[0].case_status, junction_domain::CaseStatus::Open);

    // Once the council fixes it, the feed says fixed.
    o.set_status(&reference, "FIXED").await;
    let feed = o.feed("").await;
    let updates = of_case(&feed, &reference);
    assert_eq!(updates.len(), 2);
    assert_eq!(updates[1].text_of("status"), Some("fixed"));
}

#[tokio::test]
async fn status_is_the_detailed_status_except_for_strict_clients() {
    let o = Open311::start_with(NOTICES).await;
    let (_, webform) =
        api_keys::create(o.server.store(), &Actor::internal("test"), "webform", None)
            .await
            .unwrap();
    let reference = o.report(&fms_report(&o.key, "4")).await;
    o.set_status(&reference, "IN_PROGRESS").await;
    // FixMyStreet reads `<status>` and maps `in_progress` to "in progress"; it never reads
    // `<extended_status>`.
    assert_eq!(o.status_as(&reference, &o.key).await, "in_progress");
    assert_eq!(o.status_as(&reference, "").await, "in_progress");
    assert_eq!(o.status_as(&reference, &webform).await, "open");
    o.set_status(&reference, "NOT_COUNCILS_RESPONSIBILITY")
        .await;
    assert_eq!(
        o.status_as(&reference, &o.key).await,
        "not_councils_responsibility"
    );
    assert_eq!(o.status_as(&reference, &webform).await, "closed");
    // The update feed speaks to each reader the same way.
    let statuses = |feed: Vec<Element>| -> Vec<String> {
        of_case(&feed, &reference)
            .iter()
            .map(|u| u.text_of("status").unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(
        statuses(o.feed("").await),
        ["in_progress", "not_councils_responsibility"]
    );
    assert_eq!(statuses(o.feed(&webform).await), ["open", "closed"]);
}

#[tokio::test]
async fn imports_find_the_reports_updated_in_the_window() {
    let o = Open311::start().await;
    let changed = o.report(&fms_report(&o.key, "4")).await;
    let mut other = fms_report(&o.key, "5");
    for (k, v) in other.iter_mut() {
        if *k == "attribute[fixmystreet_id]" {
            *v = "4243";
        }
    }
    let untouched = o.report(&other).await;
    // Both made before the window opens; only one changes inside it.
    tokio::time::sleep(std::time::Duration::from_millis(1_100)).await;
    let start = chrono::Utc::now();
    o.set_status(&changed, "IN_PROGRESS").await;
    let (status, body) = o
        .get(&format!(
            "requests.xml?jurisdiction_id=borsetshire&start_date={}&end_date={}",
            w3c(start),
            w3c(chrono::Utc::now() + chrono::Duration::minutes(1)),
        ))
        .await;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<String> = parse(&body)
        .children("request")
        .map(|r| r.text_of("service_request_id").unwrap().to_string())
        .collect();
    assert_eq!(listed, std::slice::from_ref(&changed), "{body}");
    assert!(!listed.contains(&untouched));
    // A window that closed before the change finds only the report unchanged since.
    let (_, body) = o
        .get(&format!(
            "requests.xml?jurisdiction_id=borsetshire&start_date={}&end_date={}",
            w3c(start - chrono::Duration::minutes(5)),
            w3c(start - chrono::Duration::seconds(1)),
        ))
        .await;
    let earlier: Vec<String> = parse(&body)
        .children("request")
        .map(|r| r.text_of("service_request_id").unwrap().to_string())
        .collect();
    assert_eq!(earlier, [untouched], "{body}");
}
