//! The GraphQL API over HTTP: authentication, authorisation, errors and pagination.

mod auditing;

use junction_domain::Role;
use junction_store::audit::{self, AuditFilter};
use serde_json::{Value, json};

use crate::support::{TestServer, code, data};

pub(super) const CREATE: &str = r#"mutation Create($input: CreateCaseInput!) {
  createCase(input: $input) { id reference status version fields agencyId caseType { code } }
}"#;

pub(super) fn pothole(depth: Value) -> Value {
    json!({"input": {
        "caseType": "POT",
        "description": "Deep pothole outside the school",
        "location": {"lat": 50.71, "long": -2.44},
        "submitter": {"name": "Pat Reporter", "email": "pat@example.org"},
        "fields": {"depth_cm": depth, "road_type": "carriageway"}
    }})
}

pub(super) async fn operation_records(server: &TestServer) -> Vec<audit::StoredAudit> {
    let (all, _) = audit::list(server.store(), &AuditFilter::default(), 1_000, None)
        .await
        .unwrap();
    all.into_iter()
        .filter(|r| r.entry.operation.is_some())
        .collect()
}

#[tokio::test]
async fn an_officer_creates_reads_and_works_a_case() {
    let server = TestServer::start("").await;
    let officer = server.token_for("olive", Some("highways"), &[Role::Officer]);
    let (status, body) = server
        .gql(Some(&officer), CREATE, pothole(json!("12")))
        .await;
    assert_eq!(status, 200);
    let case = data(&body)["createCase"].clone();
    assert_eq!(case["status"], "OPEN");
    assert_eq!(
        case["fields"],
        json!({"depth_cm": 12, "road_type": "carriageway"})
    );
    assert_eq!(case["caseType"]["code"], "POT");
    let id = case["id"].as_str().unwrap();

    let (_, body) = server
        .gql(Some(&officer), "mutation($id: ID!) { changeCaseStatus(id: $id, status: IN_PROGRESS, expectedVersion: 1) { status version } }", json!({"id": id}))
        .await;
    assert_eq!(
        data(&body)["changeCaseStatus"],
        json!({"status": "IN_PROGRESS", "version": 2})
    );
    let (_, body) = server
        .gql(Some(&officer), "mutation($id: ID!) { changeCaseStatus(id: $id, status: FIXED, expectedVersion: 1) { status } }", json!({"id": id}))
        .await;
    assert_eq!(code(&body), Some("CONFLICT"));
    let (_, body) = server
        .gql(
            Some(&officer),
            "mutation($id: ID!) { addCaseNote(id: $id, note: \"Crew booked\") { kind actor } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(
        data(&body)["addCaseNote"],
        json!({"kind": "NOTE_ADDED", "actor": "olive"})
    );

    let reference = case["reference"].as_str().unwrap();
    let (_, body) = server
        .gql(
            Some(&officer),
            "query($id: ID!) { case(id: $id) { id history { kind data } } }",
            json!({"id": reference}),
        )
        .await;
    let history = &data(&body)["case"]["history"];
    let kinds: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CREATED", "ROUTED", "STATUS_CHANGED", "NOTE_ADDED"]);
    assert_eq!(
        history[2]["data"],
        json!({"from": "open", "to": "in_progress"})
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_input_names_each_field_and_creates_nothing() {
    let server = TestServer::start("").await;
    let officer = server.token(&[Role::Officer]);
    let mut input = pothole(json!("deep"));
    input["input"]["location"] = json!({"lat": 95.0, "long": -2.0});
    input["input"]["fields"]["road_type"] = json!("motorway");
    input["input"]["description"] = json!("x".repeat(20_001));
    let (_, body) = server.gql(Some(&officer), CREATE, input).await;
    assert_eq!(code(&body), Some("BAD_USER_INPUT"));
    let fields: Vec<&str> = body["errors"][0]["extensions"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "description",
            "location.lat",
            "fields.depth_cm",
            "fields.road_type"
        ]
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("`motorway` is not one of: carriageway, footway"),
        "{message}"
    );

    let mut unknown = pothole(json!(3));
    unknown["input"]["caseType"] = json!("NOPE");
    let (_, body) = server.gql(Some(&officer), CREATE, unknown).await;
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"],
        "caseType"
    );

    let (_, body) = server
        .gql(Some(&officer), "{ cases { totalCount } }", Value::Null)
        .await;
    assert_eq!(data(&body)["cases"]["totalCount"], 0);
    server.stop().await;
}

#[tokio::test]
async fn roles_are_enforced_on_every_field() {
    let server = TestServer::start("").await;
    let cases = [
        (Role::Partner, "{ cases { totalCount } }", Some("FORBIDDEN")),
        (Role::Partner, "{ agencies { id } }", None),
        (Role::Auditor, "{ cases { totalCount } }", None),
        (
            Role::Officer,
            "{ auditLog { edges { cursor } } }",
            Some("FORBIDDEN"),
        ),
        (
            Role::Manager,
            "{ auditLog { edges { cursor } } }",
            Some("FORBIDDEN"),
        ),
        (Role::Auditor, "{ auditLog { edges { cursor } } }", None),
        (Role::System, "{ me { roles } }", None),
    ];
    for (role, query, expected) in cases {
        let (_, body) = server
            .gql(Some(&server.token(&[role])), query, Value::Null)
            .await;
        assert_eq!(code(&body), expected, "{role:?} {query}: {body}");
    }
    let auditor = server.token(&[Role::Auditor]);
    let (_, body) = server.gql(Some(&auditor), CREATE, pothole(json!(1))).await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    assert!(body["data"].is_null());
    // A nested field is guarded too: a partner reading a case's history is refused.
    let officer = server.token(&[Role::Officer]);
    let (_, created) = server.gql(Some(&officer), CREATE, pothole(json!(1))).await;
    let id = data(&created)["createCase"]["id"].clone();
    let (_, body) = server
        .gql(
            Some(&server.token(&[Role::Partner])),
            "query($id: ID!) { case(id: $id) { history { id } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(code(&body), Some("FORBIDDEN"));
    server.stop().await;
}

#[tokio::test]
async fn unknown_cases_are_not_found() {
    let server = TestServer::start("").await;
    let (_, body) = server
        .gql(
            Some(&server.token(&[Role::Officer])),
            "{ case(id: \"999\") { id } }",
            Value::Null,
        )
        .await;
    assert_eq!(code(&body), Some("NOT_FOUND"));
    server.stop().await;
}

#[tokio::test]
async fn cursor_pagination_and_filters() {
    let server = TestServer::start("").await;
    let officer = server.token(&[Role::Officer]);
    for depth in 1..=5 {
        server
            .gql(Some(&officer), CREATE, pothole(json!(depth)))
            .await;
    }
    let query = "query($after: String) { cases(first: 2, after: $after, filter: {caseType: \"POT\", status: OPEN}) { totalCount pageInfo { hasNextPage endCursor } edges { node { fields } } } }";
    let mut depths = Vec::new();
    let mut after = Value::Null;
    loop {
        let (_, body) = server
            .gql(Some(&officer), query, json!({"after": after}))
            .await;
        let page = &data(&body)["cases"];
        assert_eq!(page["totalCount"], 5);
        depths.extend(
            page["edges"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["node"]["fields"]["depth_cm"].as_i64().unwrap()),
        );
        if !page["pageInfo"]["hasNextPage"].as_bool().unwrap() {
            break;
        }
        after = page["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(depths, [5, 4, 3, 2, 1]);
    let (_, body) = server
        .gql(
            Some(&officer),
            "{ cases(first: 1000) { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(code(&body), Some("BAD_USER_INPUT"));
    let (_, body) = server
        .gql(
            Some(&officer),
            "{ cases(after: \"zz\") { totalCount } }",
            Value::Null,
        )
        .await;
    assert_eq!(
        body["errors"][0]["extensions"]["fields"][0]["field"],
        "after"
    );
    server.stop().await;
}

#[tokio::test]
async fn internal_errors_are_logged_never_shown() {
    let server = TestServer::start("").await;
    server
        .store()
        .execute_sql("DROP TABLE case_events")
        .await
        .unwrap();
    let officer = server.token(&[Role::Officer]);
    let (_, body) = server.gql(Some(&officer), CREATE, pothole(json!(2))).await;
    assert_eq!(code(&body), Some("INTERNAL"));
    let text = body.to_string();
    assert!(
        !text.contains("case_events") && !text.to_lowercase().contains("sql"),
        "leaked: {text}"
    );
    let (_, body) = server
        .gql(Some(&officer), "{ cases { totalCount } }", Value::Null)
        .await;
    assert_eq!(
        data(&body)["cases"]["totalCount"],
        0,
        "the failed create left nothing behind"
    );
    server.stop().await;
}

#[tokio::test]
async fn health_and_metrics_are_open_everything_else_is_not() {
    let server = TestServer::start("").await;
    let get = |path: &str| server.client.get(format!("{}{path}", server.base)).send();
    assert_eq!(get("/health/live").await.unwrap().status(), 200);
    let ready = get("/health/ready").await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(
        ready.json::<Value>().await.unwrap(),
        json!({"database": "ok", "migrations": "current"})
    );
    server
        .gql(
            Some(&server.token(&[Role::Officer])),
            "query Probe { me { subject } }",
            Value::Null,
        )
        .await;
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(
        metrics.contains("junction_graphql_requests_total{operation=\"Probe\",outcome=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("junction_graphql_request_duration_seconds_bucket"));
    assert_eq!(
        get("/graphql").await.unwrap().status(),
        405,
        "GraphiQL is for development mode only"
    );
    assert_eq!(get("/anything").await.unwrap().status(), 404);
    server.stop().await;
}

#[tokio::test]
async fn development_mode_serves_graphiql_and_introspection() {
    let server = TestServer::start_with("development = true", "").await;
    let page = server
        .client
        .get(format!("{}/graphql", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .to_lowercase()
            .contains("graphiql")
    );
    let (_, body) = server
        .gql(
            Some(&server.token(&[Role::Admin])),
            "{ __schema { queryType { name } } }",
            Value::Null,
        )
        .await;
    assert_eq!(data(&body)["__schema"]["queryType"]["name"], "QueryRoot");
    server.stop().await;
}
