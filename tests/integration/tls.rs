//! HTTPS with rustls when a certificate and key are configured.

use junction_domain::Role;
use serde_json::{Value, json};

use crate::support::TestServer;

fn fixture(name: &str) -> String {
    format!("{}/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[tokio::test]
async fn serves_https_with_the_configured_certificate() {
    let tls = format!(
        "[server.tls]\ncert = \"{}\"\nkey = \"{}\"\n",
        fixture("cert.pem"),
        fixture("key.pem")
    );
    let server = TestServer::start(&tls).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(fixture("ca.pem")).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let live = client
        .get(format!("https://{addr}/health/live"))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let body: Value = client
        .post(format!("https://{addr}/graphql"))
        .bearer_auth(server.token(&[Role::Officer]))
        .json(&json!({"query": "{ me { roles } }"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body, json!({"data": {"me": {"roles": ["OFFICER"]}}}));
    // Plain HTTP on the TLS port is not served.
    assert!(
        reqwest::get(format!("http://{addr}/health/live"))
            .await
            .map_or(true, |r| r.status() != 200)
    );
    server.stop().await;
}
