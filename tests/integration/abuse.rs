//! Attacks on a live `junction` process, as a tester from outside would make them: each must
//! leave the process up, answer a bystander within 200 ms, leave an audit record and leak
//! nothing. The process is the real binary, so an attack that aborts it fails here rather
//! than taking the test runner down.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use junction_domain::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::process::Junction;
use crate::support::{CATALOGUE, TestServer, eventually, init};

/// A `junction serve` child process, killed when dropped, and a client for it.
struct Live {
    junction: Junction,
    server: TestServer,
}

impl Live {
    async fn start() -> Live {
        Live::start_with("").await
    }

    /// With `server_extra` lines in the `[server]` table.
    async fn start_with(server_extra: &str) -> Live {
        init();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().display().to_string();
        let junction = Junction::start(dir, |port| {
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\ndata_dir = \"{d}/data\"\n{server_extra}\n\n[database]\nurl = \"sqlite://{d}/data/junction.db\"\n\n[workers]\nenabled = false\n\n{CATALOGUE}"
            )
        })
        .await;
        let loaded = junction_server::config::load(&junction.config).unwrap();
        let server = TestServer::remote(&junction.base, loaded);
        Live { junction, server }
    }

    /// The process is still running and a bystander's `/health/live` is answered in 200 ms.
    async fn assert_unharmed(&mut self, attack: &str) {
        if let Some(status) = self.junction.exited() {
            let log = std::fs::read_to_string(self.junction.dir.path().join("junction.log"))
                .unwrap_or_default();
            panic!("{attack}: junction exited ({status}); its log:\n{log}");
        }
        let started = Instant::now();
        let answered = tokio::time::timeout(
            Duration::from_millis(200),
            reqwest::get(format!("{}/health/live", self.server.base)),
        )
        .await;
        assert!(
            matches!(&answered, Ok(Ok(r)) if r.status() == 200),
            "{attack}: a bystander was not answered within 200 ms ({:?}, {answered:?})",
            started.elapsed()
        );
    }

    /// The operation records of the audit log, newest last, as an admin reads them.
    async fn operations(&self) -> Vec<Value> {
        let admin = self.server.token(&[Role::Admin]);
        let (_, body) = self
            .server
            .gql(
                Some(&admin),
                "{ auditLog(first: 100) { edges { node { kind operationName outcome errorCode } } } }",
                json!({}),
            )
            .await;
        body["data"]["auditLog"]["edges"]
            .as_array()
            .unwrap_or_else(|| panic!("audit log: {body}"))
            .iter()
            .map(|e| e["node"].clone())
            .filter(|n| n["kind"] == "operation")
            .collect()
    }
}

fn deep_list(levels: usize) -> String {
    format!("{}1{}", "[".repeat(levels), "]".repeat(levels))
}

#[tokio::test]
async fn deeply_nested_documents_are_refused_over_http_and_websocket_and_the_process_lives() {
    let mut live = Live::start().await;
    let token = live.server.token(&[]);
    let attacks = [
        // A list nested in an argument.
        format!(
            "query Deep {{ cases(first: 1, filter: {{ status: {} }}) {{ totalCount }} }}",
            deep_list(2_000)
        ),
        // An object nested in a variable's default.
        format!(
            "query Deep($v: String = {}) {{ me {{ subject }} }}",
            "{a:".repeat(2_000) + "1" + &"}".repeat(2_000)
        ),
        // Selection sets nested beyond any depth limit.
        format!("query Deep {}", "{ me ".repeat(3_000) + &"}".repeat(3_000)),
    ];
    for (i, attack) in attacks.iter().enumerate() {
        let (status, body) = live.server.gql(Some(&token), attack, json!({})).await;
        assert_eq!(status, 200, "attack {i}: {body}");
        assert_eq!(
            crate::support::code(&body),
            Some("LIMIT_EXCEEDED"),
            "attack {i}: {body}"
        );
        live.assert_unharmed(&format!("HTTP attack {i}")).await;
    }

    // The same over a WebSocket subscription.
    let url = format!("{}/graphql", live.server.base.replace("http://", "ws://"));
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url)
            .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(
        json!({"type": "connection_init", "payload": {"authorization": format!("Bearer {token}")}}),
    ))
    .await
    .unwrap();
    let ack = ws.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    let deep = format!(
        "subscription Deep {{ sharedCaseEvents(purpose: {}) {{ id }} }}",
        deep_list(2_000)
    );
    ws.send(send(
        json!({"id": "1", "type": "subscribe", "payload": {"query": deep}}),
    ))
    .await
    .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .expect("an answer")
        .unwrap()
        .unwrap();
    let answer: Value = serde_json::from_str(answer.to_text().unwrap()).unwrap();
    // The refusal comes as the operation's only result, with the request error.
    assert!(
        answer["type"] == "error" || answer["type"] == "next",
        "{answer}"
    );
    assert!(answer.to_string().contains("LIMIT_EXCEEDED"), "{answer}");
    live.assert_unharmed("WebSocket attack").await;

    // Every attack, the WebSocket one included, is on the record as refused.
    let ops = live.operations().await;
    let refused = ops
        .iter()
        .filter(|o| o["errorCode"] == "LIMIT_EXCEEDED")
        .count();
    assert!(refused > attacks.len(), "{ops:?}");
}

#[tokio::test]
async fn a_fragment_bomb_is_refused_at_once_and_a_bystander_is_served() {
    let mut live = Live::start().await;
    let token = live.server.token(&[]);
    // Each fragment spreads the next twice, ending in `__typename`: 2^24 fields from 1 KB.
    let k = 24;
    let mut bomb = String::from("query Bomb { ...F0 }\n");
    for i in 0..k {
        bomb.push_str(&format!(
            "fragment F{i} on Query {{ ...F{n} ...F{n} }}\n",
            n = i + 1
        ));
    }
    bomb.push_str(&format!("fragment F{k} on Query {{ __typename }}\n"));
    let started = Instant::now();
    let sends = (0..2).map(|_| live.server.gql(Some(&token), &bomb, json!({})));
    for (status, body) in futures::future::join_all(sends).await {
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            crate::support::code(&body),
            Some("LIMIT_EXCEEDED"),
            "{body}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused in {:?}",
        started.elapsed()
    );
    live.assert_unharmed("fragment bomb").await;
}

#[tokio::test]
async fn junk_methods_are_refused_and_never_grow_the_metrics() {
    let mut live = Live::start().await;
    let client = reqwest::Client::new();
    let metrics_size = |client: reqwest::Client, base: String| async move {
        client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .len()
    };
    // Warm every label that legitimate calls create.
    for method in ["GET", "POST"] {
        let _ = client
            .request(
                method.parse().unwrap(),
                format!("{}/open311/v2/services.xml", live.server.base),
            )
            .send()
            .await
            .unwrap();
    }
    let before = metrics_size(client.clone(), live.server.base.clone()).await;
    for i in 0..300 {
        let method = format!("JUNK{i:04}X");
        let response = client
            .request(
                method.parse().unwrap(),
                format!("{}/open311/v2/requests{i}.xml", live.server.base),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        let body = response.text().await.unwrap();
        assert!(body.contains("<errors>"), "the spec's error body: {body}");
    }
    let after = metrics_size(client.clone(), live.server.base.clone()).await;
    assert!(
        after < before + 2_048,
        "metrics grew from {before} to {after} bytes"
    );
    let ops = live.operations().await;
    assert!(
        ops.iter()
            .all(|o| !o["operationName"].to_string().contains("JUNK")),
        "a caller's method reached the audit log: {ops:?}"
    );
    assert!(
        ops.iter()
            .any(|o| o["operationName"] == "open311 other other"),
        "{ops:?}"
    );
    live.assert_unharmed("junk methods").await;
}

#[tokio::test]
async fn slow_clients_are_cut_off_and_the_connection_cap_holds() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut live =
        Live::start_with("header_timeout_secs = 1\nbody_timeout_secs = 1\nmax_connections = 100")
            .await;
    let addr = live.server.base.trim_start_matches("http://").to_string();
    // Connections that never finish their headers, and one that says nothing at all.
    let mut slow = Vec::new();
    for _ in 0..60 {
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        c.write_all(b"GET /health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(c);
    }
    slow.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    live.assert_unharmed("slow headers").await;
    // A body that stops half-way.
    let mut body = tokio::net::TcpStream::connect(&addr).await.unwrap();
    body.write_all(
        b"POST /open311/v2/requests.json HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\napi_key=",
    )
    .await
    .unwrap();
    slow.push(body);
    // Every one is closed by the server within a few seconds.
    for (i, mut c) in slow.into_iter().enumerate() {
        let mut buf = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf)).await;
        assert!(
            matches!(closed, Ok(Ok(_)) | Ok(Err(_))),
            "connection {i} was still open after 10 s"
        );
    }
    // The cap: past 100 open connections, more are closed at once, and once they go the
    // server takes connections again.
    let mut held = Vec::new();
    for _ in 0..100 {
        held.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut extra = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut buf = [0u8; 1];
    let refused = tokio::time::timeout(Duration::from_secs(2), extra.read(&mut buf)).await;
    assert!(
        matches!(refused, Ok(Ok(0)) | Ok(Err(_))),
        "a connection over the cap was kept: {refused:?}"
    );
    drop(held);
    // The refusal was the cap's (the connection was not merely timed out), and it was counted.
    let metrics = reqwest::get(format!("{}/metrics", live.server.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("junction_connections_refused_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no refusal counted:\n{metrics}"));
    assert!(refused >= 1.0, "{refused}");
    eventually(10, "the server to take connections again", || async {
        tokio::time::timeout(
            Duration::from_millis(200),
            reqwest::get(format!("{}/health/live", live.server.base)),
        )
        .await
        .ok()
        .and_then(Result::ok)
        .filter(|r| r.status() == 200)
        .map(|_| ())
    })
    .await;
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_and_secret_are_readable_by_their_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let live = Live::start().await;
    // The data directory did not exist: Junction made it, for its owner only.
    let data = live.junction.dir.path().join("data");
    let mode = std::fs::metadata(&data).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the data directory has mode {mode:o}");
    for file in [
        "junction.db",
        "junction.db-wal",
        "junction.secret",
        "audit-checkpoint.secret",
    ] {
        let path = data.join(file);
        let Ok(meta) = std::fs::metadata(&path) else {
            assert_eq!(file, "junction.db-wal", "{file} is missing");
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        assert_eq!(mode & 0o077, 0, "{file} has mode {mode:o}");
    }
}
