//! Junction killed with SIGKILL in the middle of a burn-down, then restarted: every delivery
//! arrives, and none twice.

use std::process::{Child, Command, Stdio};

use junction_server::sim::{Behaviour, Simulator};
use serde_json::{Value, json};

use crate::support::{CATALOGUE, eventually, init, junction_bin};

const CASES: usize = 1_000;

fn spawn(dir: &std::path::Path, config: &std::path::Path) -> Child {
    Command::new(junction_bin())
        .args(["serve", "--config"])
        .arg(config)
        .current_dir(dir)
        .env_remove("JUNCTION_DATABASE_URL")
        .env("JUNCTION_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("junction starts")
}

async fn gql(client: &reqwest::Client, base: &str, token: &str, query: &str, vars: Value) -> Value {
    client
        .post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn live(base: &str) {
    eventually(60, "junction to be live", || async {
        reqwest::get(format!("{base}/health/ready"))
            .await
            .ok()
            .filter(|r| r.status() == 200)
            .map(|_| ())
    })
    .await;
}

#[tokio::test]
async fn sigkill_mid_burn_down_loses_nothing_and_sends_nothing_twice() {
    init();
    let sim = Simulator::new(Behaviour {
        delay_ms: 40,
        ..Behaviour::default()
    });
    let (sim_addr, _t) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("junction.toml");
    std::fs::write(
        &config,
        format!(
            r#"[server]
listen = "127.0.0.1:{port}"
data_dir = "{data}"

[workers]
concurrency = 8

{CATALOGUE}

[[connectors]]
id = "backend"
kind = "open311"
retry = {{ initial_secs = 1, max_delay_secs = 1, max_age_hours = 1, jitter = 0.0 }}
  [connectors.params]
  endpoint = "http://{sim_addr}/open311/v2/"
  api_key = "${{JUNCTION_TEST_BACKEND_KEY}}"
  timeout_secs = 2
  lookup_by_id = true

[[routes]]
name = "potholes to the back-end"
case_types = ["POT"]
set = {{ connector = "backend" }}
"#,
            data = dir.path().display()
        ),
    )
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let mut child = spawn(dir.path(), &config);
    live(&base).await;
    let out = Command::new(junction_bin())
        .args(["token", "--role", "admin", "--config"])
        .arg(&config)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let client = reqwest::Client::new();

    // Hold the back-end while the cases pile up, so 1,000 are pending at once.
    let paused = gql(
        &client,
        &base,
        &token,
        r#"mutation { pauseConnector(id: "backend", reason: "test") }"#,
        json!({}),
    )
    .await;
    assert_eq!(paused["data"]["pauseConnector"], true, "{paused}");
    let create = "mutation($i: CreateCaseInput!) { createCase(input: $i) { id } }";
    let mut pending = futures::stream::iter(0..CASES)
        .map(|n| {
            let client = client.clone();
            let (base, token) = (base.clone(), token.clone());
            async move {
                let vars = json!({"i": {"caseType": "POT", "description": format!("hole {n}"),
                    "location": {"address": format!("{n} High St")}, "fields": {"depth_cm": 5}}});
                let body = gql(&client, &base, &token, create, vars).await;
                assert!(body["data"]["createCase"]["id"].is_string(), "{body}");
            }
        })
        .buffer_unordered(16);
    use futures::StreamExt;
    while pending.next().await.is_some() {}

    let resumed = gql(
        &client,
        &base,
        &token,
        r#"mutation { resumeConnector(id: "backend") }"#,
        json!({}),
    )
    .await;
    assert_eq!(resumed["data"]["resumeConnector"], false);
    eventually(60, "the burn-down to be under way", || async {
        (sim.requests().len() >= 100).then_some(())
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let at_kill = sim.requests().len();
    assert!(at_kill < CASES, "killed mid-way ({at_kill} delivered)");

    let mut child = spawn(dir.path(), &config);
    live(&base).await;
    eventually(120, "every case at the back-end", || async {
        (sim.requests().len() >= CASES).then_some(())
    })
    .await;
    let health = eventually(60, "every delivery recorded as sent", || async {
        let h = gql(
            &client,
            &base,
            &token,
            "{ connectors { id health { sent pending failing dead } } }",
            json!({}),
        )
        .await;
        let backend = h["data"]["connectors"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == "backend")?
            .clone();
        (backend["health"]["sent"] == CASES).then_some(backend)
    })
    .await;
    assert_eq!(health["health"]["dead"], 0);
    let requests = sim.requests();
    assert_eq!(requests.len(), CASES, "each case once at the back-end");
    let resent: Vec<_> = requests.iter().filter(|r| r.posts > 1).collect();
    assert!(resent.is_empty(), "no case was posted twice: {resent:?}");
    let mut arrivals = sim.arrivals();
    arrivals.sort();
    arrivals.dedup();
    assert_eq!(arrivals.len(), CASES);
    child.kill().unwrap();
    child.wait().unwrap();
}
