//! The `junction` binary as a newcomer uses it: serve with no configuration, mint a token,
//! query, stop with SIGTERM, verify the audit chain, check a broken configuration.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{init, junction_bin};

fn junction(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(junction_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("JUNCTION_DATABASE_URL")
        .env_remove("JUNCTION_CONFIG")
        .env_remove("JUNCTION_LISTEN")
        .output()
        .expect("junction runs")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_until_live(base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::get(format!("{base}/health/live"))
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("junction did not become live at {base}");
}

#[tokio::test]
async fn fresh_directory_serve_token_query_and_graceful_stop() {
    init();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = Command::new(junction_bin())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("JUNCTION_DATABASE_URL")
        .env_remove("JUNCTION_CONFIG")
        .env("JUNCTION_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    wait_until_live(&base).await;
    assert!(
        dir.path().join("junction.db").is_file(),
        "SQLite file created in the working directory"
    );
    assert!(
        dir.path().join("junction.secret").is_file(),
        "signing secret created on first start"
    );

    let out = junction(
        dir.path(),
        &["token", "--role", "admin", "--subject", "newcomer"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let client = reqwest::Client::new();
    let body: Value = client
        .post(format!("{base}/graphql"))
        .bearer_auth(&token)
        .json(&json!({"query": "{ me { subject roles } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"data": {"me": {"subject": "newcomer", "roles": ["ADMIN"]}}})
    );

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "junction did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status {status:?}");
    let logs = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    let request_line = logs
        .lines()
        .find(|l| l.contains("\"handled\"") && l.contains("/graphql"))
        .expect("a JSON log line for the request");
    let parsed: Value = serde_json::from_str(request_line).expect("JSON logs");
    assert!(parsed["span"]["request_id"].is_string(), "{request_line}");
    assert!(!logs.contains(&token), "tokens are never logged");

    let out = junction(dir.path(), &["audit", "verify"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("record(s) verified"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn audit_verify_fails_on_a_tampered_row() {
    init();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("junction.toml"),
        format!(
            "{}\n[server]\ndata_dir = \".\"\n",
            crate::support::CATALOGUE
        ),
    )
    .unwrap();
    let out = junction(dir.path(), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = junction(dir.path(), &["audit", "verify"]);
    assert!(out.status.success());
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("junction.db").display()
    ))
    .await
    .unwrap();
    sqlx::query(
        "UPDATE audit_log SET change = replace(change, 'Highways', 'Byways') WHERE seq = 2",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let out = junction(dir.path(), &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken at record 2"), "{stderr}");
}

#[tokio::test]
async fn audit_verify_against_a_checkpoint_finds_a_cut_log() {
    init();
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("witness")).unwrap();
    std::fs::write(
        dir.path().join("junction.toml"),
        format!(
            "{}\n[server]\ndata_dir = \".\"\n[audit]\ncheckpoint_file = \"witness/checkpoints.jsonl\"\n",
            crate::support::CATALOGUE
        ),
    )
    .unwrap();
    assert!(junction(dir.path(), &["migrate"]).status.success());
    let out = junction(dir.path(), &["audit", "checkpoint"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let kept = std::fs::read_to_string(dir.path().join("witness/checkpoints.jsonl")).unwrap();
    let kept: Value = serde_json::from_str(kept.trim()).unwrap();
    assert_eq!(printed, kept, "the witness file holds what was printed");
    let head = kept["seq"].as_i64().unwrap();
    assert!(head > 2);

    // Someone with the database cuts the last two records and moves the head back to match.
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("junction.db").display()
    ))
    .await
    .unwrap();
    let keep = head - 2;
    sqlx::query("DELETE FROM audit_log WHERE seq > ?")
        .bind(keep)
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE audit_head SET seq = ?1, hash = (SELECT hash FROM audit_log WHERE seq = ?1)",
    )
    .bind(keep)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let out = junction(dir.path(), &["audit", "verify"]);
    assert!(out.status.success(), "the chain alone cannot see a cut");
    let out = junction(
        dir.path(),
        &["audit", "verify", "--against", "witness/checkpoints.jsonl"],
    );
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("the log was cut") && stderr.contains(&format!("record {head}")),
        "{stderr}"
    );
}

#[test]
fn check_config_reports_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("broken.toml");
    std::fs::write(
        &file,
        "[[jurisdictions]]\nid = \"bor\"\nname = \"Bor\"\n\n[[agencies]]\nid = \"hw\"\nname = \"Highways\"\nkind = \"department\"\nflavour = \"mint\"\n\n[[case_types]]\ncode = \"POT\"\nname = \"Pothole\"\nagency = \"hw\"\n  [[case_types.fields]]\n  code = \"depth\"\n  description = \"Depth\"\n  datatype = \"numeric\"\n  classification = \"public\"\n\n[[connectors]]\nid = \"c\"\nkind = \"open311\"\n  [connectors.params]\n  endpoint = \"http://x.example/\"\n  api_key = \"plaintext-key\"\n\n[statuses.fixd]\ntext = \"Mended.\"\n",
    )
    .unwrap();
    let out = junction(dir.path(), &["check-config", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let f = file.display();
    for expected in [
        format!("{f}:9: agencies[0].flavour: unknown key"),
        format!("{f}:18: case_types[0].fields[0].datatype: `numeric` is not one of"),
        format!("{f}:26: connectors[0].params.api_key: secrets must be written as `${{VAR}}`"),
        format!("{f}:28: statuses.fixd: is not a status; use one of open, for_triage"),
    ] {
        assert!(
            stderr.contains(&expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("plaintext-key"),
        "a secret value is never echoed"
    );
}

#[test]
fn schema_command_prints_the_served_schema() {
    let out = junction(Path::new("."), &["schema"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        junction_api::graphql::sdl()
    );
}

#[tokio::test]
async fn check_connectors_names_each_one_and_exits_4_when_one_is_not_there() {
    let sim = junction_server::sim::Simulator::new(junction_server::sim::Behaviour::default());
    let (addr, _task) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let closed = free_port();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("connectors.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[connectors]]
id = "council"
kind = "open311"
  [connectors.params]
  endpoint = "http://{addr}/open311/v2/"
  api_key = "${{CHECK_OPEN311_KEY}}"

[[connectors]]
id = "partner-hook"
kind = "webhook"
  [connectors.params]
  url = "http://127.0.0.1:{closed}/hook"
  signing_secret = "${{CHECK_HOOK_SECRET}}"
  timeout_secs = 2
"#
        ),
    )
    .unwrap();
    let path = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(junction_bin())
            .args(["--config", file.to_str().unwrap(), "check-connectors"])
            .current_dir(&path)
            .env_remove("JUNCTION_DATABASE_URL")
            .env_remove("JUNCTION_CONFIG")
            .env("CHECK_OPEN311_KEY", "council-key-value")
            .env("CHECK_HOOK_SECRET", "hook-secret-value")
            .output()
            .expect("junction runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(4), "{stdout}");
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(
        lines[0][..5],
        [
            "council",
            "open311",
            &format!("http://{addr}/open311/v2/"),
            "deliver_case,poll_updates",
            "ok"
        ]
    );
    assert!(lines[0][5].starts_with("services.xml lists"), "{stdout}");
    assert_eq!(lines[1][0], "partner-hook");
    assert_eq!(lines[1][4], "FAILED", "{stdout}");
    let everything = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!everything.contains("council-key-value") && !everything.contains("hook-secret-value"));
}

#[tokio::test]
async fn schedules_run_now_from_the_command_line_and_say_how_it_went() {
    use junction_server::sim::{Behaviour, Simulator};
    let sim = Simulator::new(Behaviour {
        updates_html: true,
        ..Behaviour::default()
    });
    let (addr, _task) = sim.serve("127.0.0.1:0".parse().unwrap()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("junction.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[[connectors]]
id = "council"
kind = "open311"
  [connectors.params]
  endpoint = "http://{addr}/open311/v2/"
  api_key = "${{CHECK_OPEN311_KEY}}"
  [connectors.updates]
  poll_every_mins = 10
  window_mins = 60
"#
        ),
    )
    .unwrap();
    let run = |args: &'static [&'static str]| {
        let (file, path) = (file.clone(), dir.path().to_path_buf());
        tokio::task::spawn_blocking(move || {
            Command::new(junction_bin())
                .args(["--config", file.to_str().unwrap()])
                .args(args)
                .current_dir(&path)
                .env_remove("JUNCTION_DATABASE_URL")
                .env_remove("JUNCTION_CONFIG")
                .env("CHECK_OPEN311_KEY", "council-key-value")
                .output()
                .expect("junction runs")
        })
    };
    // The back-end answers with an HTML page: the run fails and says why.
    let out = run(&["schedules", "run", "poll_updates:council"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.starts_with("poll_updates:council: failed: ") && stdout.contains("<html>"),
        "{stdout}"
    );
    sim.set_behaviour(Behaviour::default());
    let out = run(&["schedules", "run", "poll_updates:council"])
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("poll_updates:council: ok {"), "{stdout}");

    let out = run(&["schedules", "list"]).await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<Vec<&str>> = stdout.lines().map(|l| l.split('\t').collect()).collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0][..2], ["mop_up_updates:council", "-"], "never run");
    assert_eq!(lines[1][..2], ["poll_updates:council", "ok"]);

    let out = run(&["schedules", "run", "poll_updates:elsewhere"])
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr.contains("`poll_updates:elsewhere` is not a schedule of this configuration"),
        "{stderr}"
    );
}
