//! Auditing and limits over HTTP: every request leaves exactly one record, including those
//! refused before they run.

use junction_domain::Role;
use serde_json::{Value, json};

use super::{CREATE, operation_records, pothole};
use crate::support::{TestServer, code, data};

#[tokio::test]
async fn bad_tokens_are_refused_with_401_and_audited() {
    let server = TestServer::start("").await;
    let (status, body) = server.gql(None, "{ me { subject } }", Value::Null).await;
    assert_eq!((status, code(&body)), (401, Some("UNAUTHENTICATED")));
    let (status, body) = server
        .gql(Some("not.a.token"), "{ me { subject } }", Value::Null)
        .await;
    assert_eq!((status, code(&body)), (401, Some("UNAUTHENTICATED")));
    let unsigned = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJldmUiLCJpc3MiOiJqdW5jdGlvbiIsImF1ZCI6Imp1bmN0aW9uIiwiZXhwIjo0MTAyNDQ0ODAwLCJyb2xlcyI6WyJhZG1pbiJdfQ.";
    let (status, _) = server
        .gql(Some(unsigned), "{ me { subject } }", Value::Null)
        .await;
    assert_eq!(status, 401);
    let records = operation_records(&server).await;
    assert_eq!(records.len(), 3);
    for r in &records {
        let op = r.entry.operation.as_ref().unwrap();
        assert_eq!(
            (
                r.entry.actor.as_str(),
                op.outcome.as_str(),
                op.error_code.as_deref()
            ),
            ("anonymous", "rejected", Some("UNAUTHENTICATED"))
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn limits_reject_before_any_resolver_runs() {
    let server =
        TestServer::start("[limits]\nmax_body_bytes = 4096\nmax_depth = 6\nmax_complexity = 300\n")
            .await;
    let token = server.token(&[Role::Admin]);
    // Depth: the schema has no cycles deep enough on its own, so nest through case → caseType → fields → values.
    let deep = "{ cases { edges { node { caseType { fields { values { key } } } } } } }";
    let (status, body) = server.gql(Some(&token), deep, Value::Null).await;
    assert_eq!(
        (status, code(&body)),
        (200, Some("LIMIT_EXCEEDED")),
        "{body}"
    );
    assert!(body["data"].is_null());
    let wide = "{ cases(first: 100) { edges { node { id reference status description history { id kind actor } } } } }";
    let (_, body) = server.gql(Some(&token), wide, Value::Null).await;
    assert_eq!(code(&body), Some("LIMIT_EXCEEDED"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("too complex")
    );
    let huge = format!("{{ me {{ subject }} }} # {}", "x".repeat(5_000));
    let (status, body) = server.gql(Some(&token), &huge, Value::Null).await;
    assert_eq!((status, code(&body)), (413, Some("LIMIT_EXCEEDED")));
    let (status, body) = server
        .post(Some(&token), r#"[{"query":"{ me { subject } }"}]"#.into())
        .await;
    assert_eq!((status, code(&body)), (400, Some("BAD_REQUEST")));
    let (status, body) = server.post(Some(&token), "{not json".into()).await;
    assert_eq!((status, code(&body)), (400, Some("BAD_REQUEST")));
    let (_, body) = server
        .gql(Some(&token), "{ me { subject ", Value::Null)
        .await;
    assert_eq!(code(&body), Some("BAD_REQUEST"));
    let (_, body) = server
        .gql(Some(&token), "{ __schema { types { name } } }", Value::Null)
        .await;
    assert!(
        body["data"]["__schema"].is_null(),
        "introspection must be off outside development: {body}"
    );
    let outcomes: Vec<(String, Option<String>)> = operation_records(&server)
        .await
        .iter()
        .rev()
        .map(|r| {
            let op = r.entry.operation.as_ref().unwrap();
            (op.outcome.clone(), op.error_code.clone())
        })
        .collect();
    let expected = [
        ("rejected", "LIMIT_EXCEEDED"),
        ("rejected", "LIMIT_EXCEEDED"),
        ("rejected", "LIMIT_EXCEEDED"),
        ("rejected", "BAD_REQUEST"),
        ("rejected", "BAD_REQUEST"),
        ("rejected", "BAD_REQUEST"),
        ("ok", ""),
    ];
    let expected: Vec<(String, Option<String>)> = expected
        .iter()
        .map(|(o, c)| (o.to_string(), (!c.is_empty()).then(|| c.to_string())))
        .collect();
    assert_eq!(outcomes, expected);
    server.stop().await;
}

#[tokio::test]
async fn every_request_leaves_exactly_one_audit_record_with_its_request_id() {
    let server = TestServer::start("").await;
    let officer = server.token_for("olive", Some("highways"), &[Role::Officer]);
    let mut request_ids = Vec::new();
    for (token, query) in [
        (Some(officer.as_str()), "query Mine { me { subject } }"),
        (
            Some(officer.as_str()),
            "query Audit { auditLog { edges { cursor } } }",
        ),
        (None, "{ me { subject } }"),
        (
            Some(officer.as_str()),
            "mutation Bad { addCaseNote(id: \"nope\", note: \"x\") { id } }",
        ),
    ] {
        let mut req = server
            .client
            .post(format!("{}/graphql", server.base))
            .header("content-type", "application/json")
            .body(json!({"query": query, "variables": {"a": 1}}).to_string());
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.unwrap();
        request_ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    let records = operation_records(&server).await;
    assert_eq!(records.len(), 4);
    let mut got: Vec<String> = records
        .iter()
        .map(|r| r.entry.request_id.clone().unwrap())
        .collect();
    got.reverse();
    assert_eq!(got, request_ids);
    let mine = records
        .iter()
        .find(|r| {
            r.entry
                .operation
                .as_ref()
                .unwrap()
                .operation_name
                .as_deref()
                == Some("Mine")
        })
        .unwrap();
    let op = mine.entry.operation.as_ref().unwrap();
    assert_eq!(
        (
            mine.entry.actor.as_str(),
            mine.entry.agency.as_deref(),
            op.operation_type.as_str()
        ),
        ("olive", Some("highways"), "query")
    );
    assert_eq!(mine.entry.roles, ["officer"]);
    assert_eq!(
        op.variables_hash.as_ref().unwrap().len(),
        64,
        "variables are hashed, never stored"
    );
    assert!(mine.entry.client_addr.as_deref() == Some("127.0.0.1"));
    let bad = records
        .iter()
        .find(|r| {
            r.entry
                .operation
                .as_ref()
                .unwrap()
                .operation_name
                .as_deref()
                == Some("Bad")
        })
        .unwrap();
    let op = bad.entry.operation.as_ref().unwrap();
    assert_eq!(
        (
            op.operation_type.as_str(),
            op.outcome.as_str(),
            op.error_code.as_deref()
        ),
        ("mutation", "error", Some("NOT_FOUND"))
    );

    // Auditors find them by actor.
    let auditor = server.token(&[Role::Auditor]);
    let (_, body) = server
        .gql(Some(&auditor), "{ auditLog(filter: {actor: \"olive\"}) { edges { node { operationName outcome errorCode } } } }", Value::Null)
        .await;
    let names: Vec<&str> = data(&body)["auditLog"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["operationName"].as_str())
        .collect();
    assert_eq!(names, ["Bad", "Audit", "Mine"]);
    server.stop().await;
}

#[tokio::test]
async fn state_changes_are_audited_with_before_and_after() {
    let server = TestServer::start("").await;
    let officer = server.token(&[Role::Officer]);
    let (_, body) = server.gql(Some(&officer), CREATE, pothole(json!(4))).await;
    let id = data(&body)["createCase"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    server
        .gql(
            Some(&officer),
            "mutation($id: ID!) { changeCaseStatus(id: $id, status: FIXED) { id } }",
            json!({"id": id}),
        )
        .await;
    let (_, body) = server
        .gql(
            Some(&server.token(&[Role::Admin])),
            "query($id: String) { auditLog(filter: {objectType: \"case\", objectId: $id}) { edges { node { action before after requestId } } } }",
            json!({"id": id}),
        )
        .await;
    let edges = data(&body)["auditLog"]["edges"].as_array().unwrap().clone();
    assert_eq!(edges.len(), 2);
    assert_eq!(edges[0]["node"]["action"], "change_status");
    assert_eq!(edges[0]["node"]["before"], json!({"status": "open"}));
    assert_eq!(edges[0]["node"]["after"], json!({"status": "fixed"}));
    assert!(edges[0]["node"]["requestId"].is_string());
    server.stop().await;
}

#[tokio::test]
async fn callers_that_hang_up_are_still_audited() {
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start("").await;
    let token = server.token(&[Role::Officer]);
    let addr = server.base.trim_start_matches("http://").to_string();
    let body = r#"{"query":"mutation { createCase(input: {caseType: \"FLY\", description: \"Sofa\", location: {address: \"Lane End\"}}) { id } }"}"#;
    for _ in 0..20 {
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        drop(stream); // gone before any answer
    }
    // A request hyper never read is no operation; every one that ran (each case created) must
    // have its record, though nobody was left to receive the response.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let records = operation_records(&server).await.len();
        let cases = junction_store::cases::list(server.store(), &Default::default(), 100, None)
            .await
            .unwrap()
            .total as usize;
        if records == cases && cases > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{records} operation records for {cases} cases created"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// A document that passed validation once skips the rules fixed by its text on later requests;
/// one that failed is checked in full every time, and a pass is never borrowed by another
/// choice of operation in the same text.
#[tokio::test]
async fn a_repeated_document_gets_the_same_answer_every_time() {
    let server = TestServer::start("").await;
    let token = server.token_for("olive", Some("highways"), &[Role::Officer]);
    let post = |query: &str, operation: Option<&str>| {
        json!({"query": query, "operationName": operation}).to_string()
    };
    let text = "query Mine { me { subject roles } } query Agency { me { agency } }";
    for _ in 0..3 {
        let (status, body) = server.post(Some(&token), post(text, Some("Mine"))).await;
        assert_eq!(status, 200);
        assert!(body["errors"].is_null(), "{body}");
        assert_eq!(body["data"]["me"]["subject"], "olive");
    }
    // The same text selecting no operation is ambiguous every time.
    for _ in 0..2 {
        let (_, body) = server.post(Some(&token), post(text, None)).await;
        assert_eq!(code(&body), Some("BAD_REQUEST"), "{body}");
    }
    let broken = "query Broken { me { subject nosuch } }";
    for _ in 0..3 {
        let (_, body) = server
            .post(Some(&token), post(broken, Some("Broken")))
            .await;
        assert_eq!(code(&body), Some("BAD_REQUEST"), "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("nosuch"), "{message}");
        assert!(body["data"].is_null(), "{body}");
    }
    let outcomes: Vec<String> = operation_records(&server)
        .await
        .iter()
        .map(|r| r.entry.operation.as_ref().unwrap().outcome.clone())
        .collect();
    assert_eq!(outcomes.iter().filter(|o| *o == "ok").count(), 3);
    assert_eq!(outcomes.iter().filter(|o| *o == "rejected").count(), 5);
    server.stop().await;
}

#[tokio::test]
async fn a_running_server_checkpoints_the_audit_head_to_its_witness() {
    let witness = tempfile::tempdir().unwrap();
    let file = witness.path().join("checkpoints.jsonl");
    let server = TestServer::start(&format!(
        "[audit]\ncheckpoint_secs = 1\ncheckpoint_file = \"{}\"\n",
        file.display()
    ))
    .await;
    let token = server.token(&[Role::Officer]);
    server
        .gql(Some(&token), "{ me { subject } }", Value::Null)
        .await;
    let key = junction_server::checkpoints::key(&server.loaded).unwrap();
    // The head moves with every request; within a few intervals a checkpoint vouches for the
    // record of the request above, signed with this installation's key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (head, _) = junction_store::audit::head(server.store()).await.unwrap();
        if let Ok(checkpoint) = junction_server::checkpoints::read(file.to_str().unwrap())
            && checkpoint.seq >= head
        {
            key.verify(&checkpoint).unwrap();
            let report = junction_store::audit::verify_against(server.store(), &checkpoint, &key)
                .await
                .unwrap();
            assert_eq!(report.first_bad, None);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint reached {}",
            file.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn refusals_at_the_graphql_route_are_audited() {
    let server = TestServer::start("").await;
    let url = format!("{}/graphql", server.base);
    let before = operation_records(&server).await.len();
    // A method GraphQL does not use.
    let resp = server.client.put(&url).body("{}").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["allow"], "GET, POST");
    // A WebSocket upgrade without the subprotocol.
    let resp = server
        .client
        .get(&url)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    // GraphiQL outside development.
    let resp = server.client.get(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 405);

    let records = operation_records(&server).await;
    assert_eq!(records.len(), before + 3, "one record per refusal");
    for r in &records[..3] {
        let op = r.entry.operation.as_ref().unwrap();
        assert_eq!(op.outcome, "rejected");
        assert_eq!(op.error_code.as_deref(), Some("BAD_REQUEST"));
        assert_eq!(op.operation_type, "graphql");
    }
}

#[tokio::test]
async fn malformed_input_values_are_the_caller_s_fault() {
    let server = TestServer::start("").await;
    let officer = server.token(&[Role::Officer]);
    // A DateTime that is not one, in a variable.
    let (status, body) = server
        .gql(
            Some(&officer),
            "query($f: DateTime) { cases(filter: {createdFrom: $f}) { totalCount } }",
            json!({"f": "last tuesday"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{body}");
    assert!(body.to_string().contains("DateTime"), "{body}");
    // A field code that would make a malformed JSON path in the database.
    for bad in [
        "a\\\"b",
        "x]$[",
        "",
        "waytoolong-waytoolong-waytoolong-waytoolong-waytoolong-waytoolong",
    ] {
        let (_, body) = server
            .gql(
                Some(&officer),
                "query($c: String!) { cases(filter: {fields: [{code: $c, value: \"1\"}]}) { totalCount } }",
                json!({"c": bad}),
            )
            .await;
        assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{bad}: {body}");
        assert!(body.to_string().contains("filter.fields[0].code"), "{body}");
        let (_, body) = server
            .gql(
                Some(&officer),
                "query($c: String!) { cases(orderBy: {by: FIELD, field: $c}) { totalCount } }",
                json!({"c": format!("{bad}!")}),
            )
            .await;
        assert_eq!(code(&body), Some("BAD_USER_INPUT"), "{bad}: {body}");
    }
    for r in operation_records(&server).await {
        let op = r.entry.operation.unwrap();
        assert_eq!(op.error_code.as_deref(), Some("BAD_USER_INPUT"));
        assert_eq!(
            op.outcome, "rejected",
            "the caller's input, not Junction's failure"
        );
    }
}
