//! Shared test support: fresh databases (SQLite always, PostgreSQL when
//! `JUNCTION_TEST_DATABASE_URL` is set), an in-process Junction on a random port, tokens and a
//! GraphQL client.

use std::path::PathBuf;
use std::sync::Once;
use std::time::Duration;

use junction_domain::Role;
use junction_server::config::{self, LoadedConfig};
use junction_server::{RunningServer, start};
use serde_json::{Value, json};

mod smtp;

#[allow(unused_imports)] // the benches that share this module use no mail relay
pub use smtp::{SmtpMode, SmtpSink};

pub fn init() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
        junction_server::telemetry::init_logging("text", "warn");
    });
}

/// A fresh, empty database. PostgreSQL databases are dropped when this is.
pub struct TestDb {
    pub url: String,
    pg: Option<(String, String)>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("test.db").display());
        TestDb {
            url,
            pg: None,
            _dir: Some(dir),
        }
    }

    /// A new database on the PostgreSQL server named by `JUNCTION_TEST_DATABASE_URL`, if set.
    pub async fn postgres() -> Option<TestDb> {
        let base = std::env::var("JUNCTION_TEST_DATABASE_URL")
            .ok()
            .filter(|v| !v.is_empty())?;
        let name = format!("junction_t_{}", uuid::Uuid::new_v4().simple());
        let admin = sqlx::PgPool::connect(&base)
            .await
            .expect("connect to JUNCTION_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("create test database");
        admin.close().await;
        let url = replace_db_name(&base, &name);
        Some(TestDb {
            url,
            pg: Some((base, name)),
            _dir: None,
        })
    }
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (head, query) = url
        .split_once('?')
        .map_or((url, None), |(h, q)| (h, Some(q)));
    let cut = head
        .rfind('/')
        .filter(|i| *i > head.find("://").map_or(0, |s| s + 2))
        .unwrap_or(head.len());
    let mut out = format!("{}/{name}", &head[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg.take() {
            // Dropped from a plain thread: Drop may run inside or outside a runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(admin) = sqlx::PgPool::connect(&base).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&admin)
                        .await;
                        admin.close().await;
                    }
                });
            })
            .join();
        }
    }
}

/// Every database the tests should cover: SQLite, plus PostgreSQL when configured.
pub async fn all_databases() -> Vec<(&'static str, TestDb)> {
    let mut dbs = vec![("sqlite", TestDb::sqlite())];
    if let Some(pg) = TestDb::postgres().await {
        dbs.push(("postgres", pg));
    }
    dbs
}

/// A small catalogue used by most tests: one jurisdiction, two agencies, two case types.
pub const CATALOGUE: &str = r#"
[[jurisdictions]]
id = "borsetshire"
name = "Borsetshire Council"

[[agencies]]
id = "highways"
name = "Highways"
kind = "department"

[[agencies]]
id = "police"
name = "Borsetshire Police"
kind = "partner"

[[case_types]]
code = "POT"
name = "Pothole"
agency = "highways"
published = true
  [[case_types.fields]]
  code = "depth_cm"
  description = "Depth in cm"
  datatype = "number"
  required = true
  classification = "public"
  [[case_types.fields]]
  code = "road_type"
  description = "Where"
  datatype = "singlevaluelist"
  classification = "public"
  values = [{ key = "carriageway", name = "Road" }, { key = "footway", name = "Pavement" }]

[[case_types]]
code = "FLY"
name = "Fly-tipping"
agency = "highways"
published = true
"#;

/// Junction running in this process on a random port.
pub struct TestServer {
    pub base: String,
    pub _dir: tempfile::TempDir,
    pub loaded: LoadedConfig,
    pub server: Option<RunningServer>,
    pub client: reqwest::Client,
}

impl TestServer {
    /// On a fresh SQLite database with [`CATALOGUE`] and `extra` configuration.
    pub async fn start(extra: &str) -> TestServer {
        TestServer::start_with("", extra).await
    }

    /// As [`TestServer::start`], with `server_extra` lines in the `[server]` table.
    pub async fn start_with(server_extra: &str, extra: &str) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("junction.db").display());
        TestServer::start_in(dir, &url, server_extra, &format!("{CATALOGUE}\n{extra}")).await
    }

    /// On `database_url` with exactly `config` (plus server settings).
    pub async fn start_on(database_url: &str, config: &str) -> TestServer {
        TestServer::start_in(tempfile::tempdir().unwrap(), database_url, "", config).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        database_url: &str,
        server_extra: &str,
        config: &str,
    ) -> TestServer {
        init();
        let path = write_config(&dir, database_url, server_extra, config);
        let loaded = config::load(&path).unwrap_or_else(|e| panic!("{e}"));
        let server = start(loaded.clone()).await.expect("server starts");
        let base = format!("http://{}", server.addr);
        TestServer {
            base,
            _dir: dir,
            loaded,
            server: Some(server),
            client: reqwest::Client::new(),
        }
    }

    /// A handle on a Junction running elsewhere (another process) at `base`.
    pub fn remote(base: &str, loaded: LoadedConfig) -> TestServer {
        TestServer {
            base: base.to_string(),
            _dir: tempfile::tempdir().unwrap(),
            loaded,
            server: None,
            client: reqwest::Client::new(),
        }
    }

    /// A token the server accepts, for `roles`.
    pub fn token(&self, roles: &[Role]) -> String {
        self.token_for("tester", None, roles)
    }

    pub fn token_for(&self, subject: &str, agency: Option<&str>, roles: &[Role]) -> String {
        let auth = junction_server::app::authenticator(&self.loaded).unwrap();
        auth.issue(subject, agency, roles, Duration::from_secs(600))
            .unwrap()
    }

    /// POSTs a GraphQL request and returns the status and JSON body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
        let body = json!({"query": query, "variables": variables});
        self.post(token, body.to_string()).await
    }

    pub async fn post(&self, token: Option<&str>, body: String) -> (u16, Value) {
        let mut req = self
            .client
            .post(format!("{}/graphql", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")),
        )
    }

    pub fn store(&self) -> &junction_store::Store {
        &self.server.as_ref().unwrap().store
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.shutdown().await.expect("clean shutdown");
        }
    }
}

pub fn write_config(
    dir: &tempfile::TempDir,
    database_url: &str,
    server_extra: &str,
    config: &str,
) -> PathBuf {
    let path = dir.path().join("junction.toml");
    let text = format!(
        "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{}\"\nshutdown_grace_secs = 5\n{server_extra}\n\n[database]\nurl = \"{database_url}\"\n\n{config}",
        dir.path().display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// The first error's code, or `None` when the response has no errors.
pub fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"].as_str()
}

/// Asserts there are no errors and returns `data`.
pub fn data(body: &Value) -> &Value {
    assert!(body.get("errors").is_none(), "unexpected errors: {body}");
    &body["data"]
}

/// Path to the `junction` binary, built once per test run with the same profile as the tests
/// (`cargo test` builds binaries only for the package whose tests it runs).
pub fn junction_bin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let mut dir = std::env::current_exe().unwrap();
            dir.pop();
            if dir.ends_with("deps") {
                dir.pop();
            }
            let release = dir.ends_with("release");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut cmd = std::process::Command::new(cargo);
            cmd.args([
                "build",
                "--quiet",
                "-p",
                "junction-server",
                "--bin",
                "junction",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("cargo runs");
            assert!(status.success(), "building the junction binary failed");
            dir.join("junction")
        })
        .clone()
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `secs` seconds.
pub async fn eventually<T, F, Fut>(secs: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {secs}s waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `service_request_id` of an Open311 answer to a report, which must be there.
pub fn service_request_id(answer: &str) -> String {
    junction_connectors::xml::parse(answer)
        .unwrap()
        .child("request")
        .and_then(|r| r.text_of("service_request_id"))
        .unwrap()
        .to_string()
}

/// Every delivery of the case with `reference`, which must exist.
pub async fn deliveries_of(
    store: &junction_store::Store,
    reference: &str,
) -> Vec<junction_store::deliveries::Delivery> {
    let case = junction_store::cases::get(store, reference)
        .await
        .unwrap()
        .unwrap();
    junction_store::deliveries::for_case(store, &case.id)
        .await
        .unwrap()
}
