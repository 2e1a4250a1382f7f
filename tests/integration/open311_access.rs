//! Who may read and write what over Open311: only published types are served, anonymous
//! readers see only public attributes, a front-end sees more of the cases it sent and may
//! write only to those, and paging costs the same at any depth.

use junction_domain::{Actor, Role};
use junction_store::api_keys;
use serde_json::{Value, json};

use crate::open311::{Open311, fms_report, parse};

/// A staff-only type beside the published ones, and the core attributes left at their
/// defaults (description, address, point and UPRN are official).
const STAFF_TYPE: &str = r#"
[[case_types]]
code = "FHC"
name = "Food hygiene complaint"
agency = "highways"
"#;

async fn staff_case(o: &Open311) -> String {
    let officer = o
        .server
        .token_for("olive", Some("highways"), &[Role::Officer]);
    let (status, body) = o
        .server
        .gql(
            Some(&officer),
            "mutation($i: CreateCaseInput!) { createCase(input: $i) { reference } }",
            json!({"i": {"caseType": "FHC", "description": "Mice in the kitchen at 4 Mill Lane",
                   "location": {"lat": 50.71, "long": -2.44, "address": "4 Mill Lane"}}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body["data"]["createCase"]["reference"]
        .as_str()
        .unwrap_or_else(|| panic!("{body}"))
        .to_string()
}

/// A new FixMyStreet report (each with its own FixMyStreet id, as FixMyStreet's are).
async fn fms_case(o: &Open311) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(5000);
    let id = NEXT
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .to_string();
    let mut form = fms_report(&o.key, "4");
    form.retain(|(k, _)| *k != "attribute[fixmystreet_id]");
    form.push(("attribute[fixmystreet_id]", &id));
    let (status, body) = o.post_form("requests.json", &form).await;
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v[0]["service_request_id"].as_str().unwrap().to_string()
}

/// A second front-end's key: a council web form beside FixMyStreet.
async fn other_client(o: &Open311) -> String {
    api_keys::create(
        o.server.store(),
        &Actor::internal("test"),
        "council-web-form",
        None,
    )
    .await
    .unwrap()
    .1
}

async fn json(o: &Open311, path: &str) -> (u16, Value) {
    let (status, body) = o.get(path).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}")),
    )
}

#[tokio::test]
async fn unpublished_types_are_not_served_and_anonymous_readers_see_only_public_attributes() {
    let o = Open311::start_with(STAFF_TYPE).await;
    let staff = staff_case(&o).await;
    let fms = fms_case(&o).await;
    let other_key = other_client(&o).await;

    // Not listed, not describable, not postable.
    let (_, services) = json(&o, "services.json").await;
    let codes: Vec<&str> = services
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["service_code"].as_str())
        .collect();
    assert!(!codes.contains(&"FHC"), "{codes:?}");
    assert!(codes.contains(&"POT"), "{codes:?}");
    let (status, _) = o.get("services/FHC.json").await;
    assert_eq!(status, 404);
    let mut form = fms_report(&o.key, "4");
    form.retain(|(k, _)| *k != "service_code");
    form.push(("service_code", "FHC"));
    let (status, body) = o.post_form("requests.json", &form).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("FHC"), "{body}");

    // Not readable, alone or in a list, by anyone.
    for key in ["", o.key.as_str()] {
        let (status, body) = json(&o, &format!("requests/{staff}.json?api_key={key}")).await;
        assert_eq!(status, 404, "{body}");
        let (status, list) = json(&o, &format!("requests.json?api_key={key}")).await;
        assert_eq!(status, 200, "{list}");
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["service_request_id"].as_str())
            .collect();
        assert_eq!(ids, vec![fms.as_str()], "only the published case");
        let (_, by_id) = json(
            &o,
            &format!("requests.json?service_request_id={staff},{fms}&api_key={key}"),
        )
        .await;
        assert_eq!(by_id.as_array().unwrap().len(), 1, "{by_id}");
    }

    // Anonymous and another front-end: public attributes only.
    for key in ["", other_key.as_str()] {
        let (_, list) = json(&o, &format!("requests/{fms}.json?api_key={key}")).await;
        let r = &list[0];
        assert_eq!(r["service_code"], "POT");
        assert_eq!(r["status"], "open");
        for hidden in [
            "description",
            "address",
            "address_id",
            "lat",
            "long",
            "external_id",
        ] {
            assert!(r[hidden].is_null(), "{hidden} shown with key `{key}`: {r}");
        }
        assert!(!list.to_string().contains("test@example.com"), "{list}");
    }
    // The front-end that sent it sees its official attributes, never personal ones.
    let (_, list) = json(&o, &format!("requests/{fms}.json?api_key={}", o.key)).await;
    let r = &list[0];
    assert!(
        r["description"]
            .as_str()
            .is_some_and(|d| d.contains("problem detail")),
        "{r}"
    );
    assert_eq!(r["lat"], 50.71);
    assert!(!list.to_string().contains("test@example.com"), "{list}");

    // A key that is not valid is refused, not read as anonymous.
    let (status, _) = o.get("requests.json?api_key=not-a-key").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_front_end_may_post_updates_only_to_the_cases_it_sent() {
    let o = Open311::start_with(STAFF_TYPE).await;
    let staff = staff_case(&o).await;
    let fms = fms_case(&o).await;
    let other_key = other_client(&o).await;
    let update = |key: &str, reference: &str, id: &str| {
        vec![
            ("jurisdiction_id", "borsetshire".to_string()),
            ("api_key", key.to_string()),
            ("service_request_id", reference.to_string()),
            ("update_id", id.to_string()),
            ("status", "OPEN".to_string()),
            ("updated_datetime", "2026-12-07T10:00:00Z".to_string()),
            ("description", "Still there".to_string()),
        ]
    };
    let post = |form: Vec<(&'static str, String)>| {
        let o = &o;
        async move {
            let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
            o.post_form("servicerequestupdates.xml", &pairs).await
        }
    };
    let (status, body) = post(update(&other_key, &fms, "u1")).await;
    assert_eq!(status, 403, "another front-end's case: {body}");
    assert!(body.contains("not sent by this client"), "{body}");
    let (status, body) = post(update(&o.key, &staff, "u2")).await;
    assert_eq!(status, 404, "a staff case is not there for Open311: {body}");
    let (status, body) = post(update(&o.key, &fms, "u3")).await;
    assert_eq!(status, 200, "its own case: {body}");
    let root = parse(&body);
    assert!(root.child("request_update").is_some(), "{body}");
}

#[tokio::test]
async fn any_page_costs_one_query_and_deep_pages_are_refused_at_once() {
    let o = Open311::start_with(STAFF_TYPE).await;
    let mut refs = Vec::new();
    for _ in 0..5 {
        refs.push(fms_case(&o).await);
    }
    refs.reverse(); // newest first, as listed
    let officer = o
        .server
        .token_for("olive", Some("highways"), &[Role::Officer]);
    // Close the newest: a status filter applies before paging, not after.
    let (_, closed) = o
        .server
        .gql(
            Some(&officer),
            r#"mutation($id: ID!) { changeCaseStatus(id: $id, status: FIXED) { status } }"#,
            json!({"id": refs[0]}),
        )
        .await;
    assert_eq!(
        closed["data"]["changeCaseStatus"]["status"], "FIXED",
        "{closed}"
    );
    let page = |n: u64, status: &str| format!("requests.json?page_size=2&page={n}&status={status}");
    let ids = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|r| r["service_request_id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, p1) = json(&o, &page(1, "open")).await;
    let (_, p2) = json(&o, &page(2, "open")).await;
    let (_, p3) = json(&o, &page(3, "open")).await;
    assert_eq!(ids(&p1), refs[1..3]);
    assert_eq!(ids(&p2), refs[3..5]);
    assert!(ids(&p3).is_empty());
    let (_, closed_page) = json(&o, &page(1, "closed")).await;
    assert_eq!(ids(&closed_page), refs[0..1]);

    // Refused before any query is made, naming the parameter.
    let (status, body) = o.get("requests.xml?page_size=1&page=1000000").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("page:"), "names the parameter: {body}");
}
