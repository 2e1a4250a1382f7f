//! Resent reports: FixMyStreet sends a report again when it lost the answer, and other clients
//! retry with an `Idempotency-Key`; either way the same client gets the case it already made,
//! and nothing is created or sent twice. Ids belong to the client that sent them.

use junction_domain::{Actor, Role};
use junction_store::{api_keys, cases, deliveries};
use serde_json::{Value, json};

use crate::open311::{Open311, ROUTING, fms_report};
use crate::support::{CATALOGUE, TestDb, TestServer, data};

fn reference(text: &str) -> String {
    let answer: Value = serde_json::from_str(text).unwrap();
    answer[0]["service_request_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {text}"))
        .to_string()
}

async fn case_count(o: &Open311) -> u64 {
    cases::list(o.server.store(), &Default::default(), 1, None)
        .await
        .unwrap()
        .total
}

async fn form_post(o: &Open311, form: &[(&str, &str)], key: Option<&str>) -> (u16, String) {
    let mut req = o
        .server
        .client
        .post(format!("{}/open311/v2/requests.json", o.server.base))
        .form(form);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

/// Ten copies of the same report at once, then one more: one case, one delivery.
async fn resends_make_one_case(o: &Open311) {
    let before = case_count(o).await;
    let form = fms_report(&o.key, "3");
    let sends = (0..10).map(|_| o.post_form("requests.json", &form));
    let answers = futures::future::join_all(sends).await;
    let mut ids: Vec<String> = answers
        .iter()
        .map(|(status, text)| {
            assert_eq!(*status, 200, "{text}");
            reference(text)
        })
        .collect();
    let (status, text) = o.post_form("requests.json", &form).await;
    assert_eq!(status, 200, "{text}");
    ids.push(reference(&text));
    ids.dedup();
    assert_eq!(
        ids.len(),
        1,
        "every resend is answered with the first case: {ids:?}"
    );
    assert_eq!(case_count(o).await, before + 1);
    let case = cases::get(o.server.store(), &ids[0])
        .await
        .unwrap()
        .unwrap();
    let sent = deliveries::for_case(o.server.store(), &case.id)
        .await
        .unwrap();
    assert_eq!(sent.len(), 1, "one delivery, not one per resend: {sent:?}");
}

#[tokio::test]
async fn a_resent_report_is_answered_with_the_case_already_made() {
    let o = Open311::start().await;
    resends_make_one_case(&o).await;

    // Another front-end's report 4242 is another report.
    let (_, other_key) = api_keys::create(
        o.server.store(),
        &Actor::internal("test"),
        "council-web-form",
        None,
    )
    .await
    .unwrap();
    let before = case_count(&o).await;
    let (status, text) = o
        .post_form("requests.json", &fms_report(&other_key, "3"))
        .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(case_count(&o).await, before + 1);

    // A client with no id of its own retries with an Idempotency-Key; without one, each post
    // is a new report.
    let mut form = fms_report(&other_key, "3");
    form.retain(|(k, _)| *k != "attribute[fixmystreet_id]");
    let before = case_count(&o).await;
    let (_, first) = form_post(&o, &form, Some("form-7f3a")).await;
    let (_, again) = form_post(&o, &form, Some("form-7f3a")).await;
    assert_eq!(reference(&first), reference(&again));
    assert_eq!(case_count(&o).await, before + 1);
    form_post(&o, &form, None).await;
    form_post(&o, &form, None).await;
    assert_eq!(case_count(&o).await, before + 3);
}

#[tokio::test]
async fn concurrent_resends_make_one_case_on_postgresql() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let server = TestServer::start_on(&db.url, &format!("{CATALOGUE}\n{ROUTING}")).await;
    let o = Open311::with_server(server).await;
    resends_make_one_case(&o).await;
}

#[tokio::test]
async fn create_case_with_an_idempotency_key_is_made_once_per_caller() {
    let server = TestServer::start("").await;
    let create = "mutation($i: CreateCaseInput!) { createCase(input: $i) { id } }";
    let input = |key: &str| {
        json!({"i": {"caseType": "POT", "description": "hole", "location": {"address": "1 High St"},
            "fields": {"depth_cm": 5}, "idempotencyKey": key}})
    };
    let olive = server.token_for("olive", None, &[Role::Officer]);
    let (_, a) = server.gql(Some(&olive), create, input("k-1")).await;
    let (_, b) = server.gql(Some(&olive), create, input("k-1")).await;
    assert_eq!(data(&a)["createCase"]["id"], data(&b)["createCase"]["id"]);
    let (_, c) = server.gql(Some(&olive), create, input("k-2")).await;
    assert_ne!(data(&a)["createCase"]["id"], data(&c)["createCase"]["id"]);
    // Another caller's key is its own.
    let pat = server.token_for("pat", None, &[Role::Officer]);
    let (_, d) = server.gql(Some(&pat), create, input("k-1")).await;
    assert_ne!(data(&a)["createCase"]["id"], data(&d)["createCase"]["id"]);
    // A blank key is refused, naming the field.
    let (_, e) = server.gql(Some(&olive), create, input(" ")).await;
    assert!(e.to_string().contains("input.idempotencyKey"), "{e}");
}
