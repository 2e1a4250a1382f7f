//! Live subscriptions over graphql-transport-ws: redaction, resume, cohorts, token expiry and
//! delivery across processes.

use super::*;

/// A graphql-transport-ws client.
pub(super) struct Ws {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl Ws {
    pub(super) async fn connect(s: &TestServer, token: &str, purpose: &str) -> Ws {
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

    pub(super) async fn subscribe(&mut self, after: Option<&str>) {
        let query = "subscription($after: ID) { sharedCaseEvents(after: $after) { id kind data redacted case { reference fields submitter { email } } } }";
        self.stream
            .send(Message::text(
                json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
                    .to_string(),
            ))
            .await
            .unwrap();
    }

    pub(super) async fn next_json(&mut self) -> Value {
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
    pub(super) async fn closing(&mut self) -> Value {
        let mut msg = self.next_json().await;
        if msg["type"] == "complete" {
            msg = self.next_json().await;
        }
        assert_eq!(msg["type"], "close", "{msg}");
        msg
    }

    /// The next event's payload.
    pub(super) async fn event(&mut self) -> Value {
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
