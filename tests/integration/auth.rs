//! Public-key tokens: a JWKS file, `kid` selection, and algorithm pinning, end to end.

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use junction_api::Claims;
use serde_json::Value;

use crate::support::{TestServer, code, data};

fn fixture(name: &str) -> String {
    format!("{}/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn claims(iss: &str, exp_offset: i64) -> Claims {
    let now = chrono::Utc::now().timestamp();
    Claims {
        sub: "case-system".into(),
        iss: iss.into(),
        aud: "junction".into(),
        exp: now + exp_offset,
        iat: now,
        nbf: None,
        agency: Some("highways".into()),
        roles: vec!["system".into()],
        jti: None,
    }
}

fn sign(kid: Option<&str>, claims: &Claims) -> String {
    let pem = std::fs::read(fixture("ed25519-test-private.pem")).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = kid.map(String::from);
    encode(&header, claims, &EncodingKey::from_ed_pem(&pem).unwrap()).unwrap()
}

#[tokio::test]
async fn jwks_keys_are_selected_by_kid_and_algorithms_are_pinned() {
    let auth = format!(
        "[auth]\nissuer = \"https://idp.borsetshire.example\"\nalgorithms = [\"EdDSA\"]\njwks_file = \"{}\"\n",
        fixture("jwks.json")
    );
    let server = TestServer::start(&auth).await;
    let iss = "https://idp.borsetshire.example";
    let (status, body) = server
        .gql(
            Some(&sign(Some("test-ed-1"), &claims(iss, 300))),
            "{ me { subject roles agency } }",
            Value::Null,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(data(&body)["me"]["subject"], "case-system");

    for (token, why) in [
        (sign(Some("someone-else"), &claims(iss, 300)), "unknown kid"),
        (sign(None, &claims(iss, 300)), "no kid"),
        (
            sign(Some("test-ed-1"), &claims("https://evil.example", 300)),
            "wrong issuer",
        ),
        (sign(Some("test-ed-1"), &claims(iss, -300)), "expired"),
        (
            encode(
                &Header::new(Algorithm::HS256),
                &claims(iss, 300),
                &EncodingKey::from_secret(&std::fs::read(fixture("jwks.json")).unwrap()),
            )
            .unwrap(),
            "HS256 signed with the public key (algorithm confusion)",
        ),
    ] {
        let (status, body) = server
            .gql(Some(&token), "{ me { subject } }", Value::Null)
            .await;
        assert_eq!(
            (status, code(&body)),
            (401, Some("UNAUTHENTICATED")),
            "{why}: {body}"
        );
    }
    server.stop().await;
}
