//! Property-based fuzzing of every parser Junction owns, through the real server where one
//! serves it: Open311 forms and multipart bodies, GraphQL documents and variables, back-end
//! XML, and the configuration file. Whatever arrives, the answer is a clear refusal in the
//! protocol's own format, never a 5xx, a panic or an internal error, and the server stays up.
//!
//! `JUNCTION_FUZZ_CASES` sets the cases per target (default 200) and `JUNCTION_FUZZ_SEED` the
//! seed (printed on failure), so a failure found in CI can be replayed exactly.

use std::time::Instant;

use junction_domain::Role;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::open311::{Open311, fms_report};
use crate::support::TestServer;

fn cases() -> usize {
    std::env::var("JUNCTION_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// `n` values of `strategy`, from a seed that is printed so a failure can be replayed.
fn samples<S: Strategy>(strategy: S, n: usize) -> (u64, Vec<S::Value>) {
    let seed = std::env::var("JUNCTION_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(Config::default(), rng);
    let values = (0..n)
        .map(|_| strategy.new_tree(&mut runner).unwrap().current())
        .collect();
    (seed, values)
}

/// Text a hostile client might send: plain, unicode, control characters, percent sequences,
/// brackets, and now and then something long.
fn nasty_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[ -~]{0,40}",
        2 => any::<String>(),
        1 => "(%[0-9A-Fa-f]{2}|%|\\+|&|=){0,30}",
        1 => "[\\[\\]{}()<>\"'\\\\]{0,60}",
        1 => (1usize..200_000).prop_map(|n| "x".repeat(n)),
    ]
}

/// An Open311 form: real keys with hostile values, and hostile keys.
fn open311_form(key: String) -> impl Strategy<Value = Vec<(String, String)>> {
    let known = prop::sample::select(vec![
        "service_code",
        "jurisdiction_id",
        "lat",
        "long",
        "address_string",
        "address_id",
        "description",
        "email",
        "first_name",
        "last_name",
        "phone",
        "media_url",
        "account_id",
        "attribute[depth_cm]",
        "attribute[fixmystreet_id]",
        "attribute[]",
        "attribute[[x]]",
        "service_request_id",
        "update_id",
        "status",
        "updated_datetime",
        "page",
        "page_size",
        "start_date",
        "end_date",
    ])
    .prop_map(str::to_string);
    let pair = (prop_oneof![4 => known, 1 => nasty_text()], nasty_text());
    prop::collection::vec(pair, 0..20).prop_map(move |mut pairs| {
        pairs.insert(0, ("api_key".into(), key.clone()));
        pairs
    })
}

fn encode(pairs: &[(String, String)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

#[tokio::test]
async fn open311_forms_never_fail_the_server() {
    let o = Open311::start().await;
    let (seed, forms) = samples(open311_form(o.key.clone()), cases());
    let (_, raw) = samples(prop::collection::vec(any::<u8>(), 0..2_000), cases() / 2);
    let started = Instant::now();
    for (i, form) in forms.iter().enumerate() {
        let body = encode(form);
        for path in [
            "requests.json",
            "requests.xml",
            "servicerequestupdates.json",
        ] {
            let (status, text) = o
                .post_raw(
                    path,
                    "application/x-www-form-urlencoded",
                    body.clone().into_bytes(),
                )
                .await;
            check_open311(seed, i, path, status, &text);
        }
        // Reads take the same arguments in the query string (within what a URL can hold).
        if body.len() < 8_000 {
            let (status, text) = o.get(&format!("requests.json?{body}")).await;
            check_open311(seed, i, "GET requests.json", status, &text);
        }
    }
    for (i, bytes) in raw.into_iter().enumerate() {
        let (status, text) = o
            .post_raw("requests.xml", "application/x-www-form-urlencoded", bytes)
            .await;
        check_open311(seed, i, "raw requests.xml", status, &text);
    }
    assert_alive(&o.server).await;
    eprintln!(
        "open311 forms: {} cases in {:?}",
        forms.len(),
        started.elapsed()
    );
}

/// A multipart body built from parts with hostile names, file names, types and bytes, and
/// now and then a broken boundary.
fn multipart_body() -> impl Strategy<Value = (String, Vec<u8>)> {
    let part = (
        nasty_text(),
        prop::option::of(nasty_text()),
        prop::option::of("[a-z]{1,10}/[a-z0-9.+-]{1,20}"),
        prop::collection::vec(any::<u8>(), 0..5_000),
    );
    (
        "[A-Za-z0-9'()+_,./:=?-]{1,70}",
        prop::collection::vec(part, 0..8),
        any::<bool>(),
    )
        .prop_map(|(boundary, parts, broken)| {
            let mut body = Vec::new();
            for (name, file, kind, bytes) in parts {
                body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
                let mut disposition = format!("Content-Disposition: form-data; name=\"{name}\"");
                if let Some(f) = file {
                    disposition.push_str(&format!("; filename=\"{f}\""));
                }
                body.extend_from_slice(disposition.as_bytes());
                body.extend_from_slice(b"\r\n");
                if let Some(k) = kind {
                    body.extend_from_slice(format!("Content-Type: {k}\r\n").as_bytes());
                }
                body.extend_from_slice(b"\r\n");
                body.extend_from_slice(&bytes);
                body.extend_from_slice(b"\r\n");
            }
            if !broken {
                body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
            }
            (boundary, body)
        })
}

#[tokio::test]
async fn open311_multipart_bodies_never_fail_the_server() {
    let o = Open311::start().await;
    let (seed, bodies) = samples(multipart_body(), cases());
    let report = encode(
        &fms_report(&o.key, "3")
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    );
    for (i, (boundary, body)) in bodies.into_iter().enumerate() {
        let content_type = format!("multipart/form-data; boundary={boundary}");
        let (status, text) = o
            .post_raw(&format!("requests.json?{report}"), &content_type, body)
            .await;
        check_open311(seed, i, "multipart requests.json", status, &text);
    }
    assert_alive(&o.server).await;
}

fn check_open311(seed: u64, i: usize, what: &str, status: u16, text: &str) {
    assert!(
        status < 500,
        "{what}: {status} for case {i} (JUNCTION_FUZZ_SEED={seed}): {text}"
    );
    if what.contains(".json") {
        serde_json::from_str::<Value>(text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}) for case {i}, seed {seed}: {text}"));
    } else {
        junction_connectors::xml::parse(text)
            .unwrap_or_else(|e| panic!("{what}: not XML ({e}) for case {i}, seed {seed}: {text}"));
    }
}

/// A GraphQL value: scalars, and lists and objects nested to a random depth.
fn gql_value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        "[a-zA-Z0-9 ]{0,10}".prop_map(|s| format!("\"{s}\"")),
        Just("$v".to_string()),
        Just("HIGH".to_string()),
    ];
    leaf.prop_recursive(6, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec(("[a-z]{1,8}", inner), 0..5).prop_map(|v| {
                let fields: Vec<String> = v.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

/// A selection set over field names the schema has (and some it does not), with arguments,
/// aliases, fragments and directives.
fn gql_selection() -> impl Strategy<Value = String> {
    let name = prop::sample::select(vec![
        "me",
        "cases",
        "case",
        "caseTypes",
        "agencies",
        "auditLog",
        "edges",
        "node",
        "id",
        "reference",
        "fields",
        "submitter",
        "email",
        "history",
        "data",
        "__typename",
        "__schema",
        "types",
        "deliveries",
        "connectors",
        "nosuch",
    ]);
    let field = (
        name.clone(),
        prop::option::of(prop::collection::vec(("[a-z]{1,6}", gql_value()), 0..3)),
        prop::option::of("[a-z]{1,5}"),
    )
        .prop_map(|(name, args, alias)| {
            let mut out = alias.map(|a| format!("{a}: ")).unwrap_or_default();
            out.push_str(name);
            if let Some(args) = args {
                let args: Vec<String> =
                    args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
                out.push_str(&format!("({})", args.join(", ")));
            }
            out
        });
    field.prop_recursive(8, 60, 6, move |inner| {
        prop_oneof![
            (name.clone(), prop::collection::vec(inner.clone(), 1..4))
                .prop_map(|(n, s)| format!("{n} {{ {} }}", s.join(" "))),
            prop::collection::vec(inner.clone(), 1..4)
                .prop_map(|s| format!("... on QueryRoot {{ {} }}", s.join(" "))),
            inner.prop_map(|s| format!("{s} @include(if: true)")),
        ]
    })
}

fn gql_request() -> impl Strategy<Value = Value> {
    let variables = prop_oneof![
        Just(Value::Null),
        "[a-z0-9 ]{0,8}".prop_map(|s| json!({"v": s})),
        (1usize..400).prop_map(|depth| {
            let mut v = json!(1);
            for _ in 0..depth {
                v = json!([v]);
            }
            json!({"v": v})
        }),
    ];
    let document = prop_oneof![
        4 => prop::collection::vec(gql_selection(), 1..4)
            .prop_map(|s| format!("query Q($v: String) {{ {} }}", s.join(" "))),
        1 => prop::collection::vec(gql_selection(), 1..3)
            .prop_map(|s| format!("fragment F on QueryRoot {{ {} ...F }} {{ ...F }}", s.join(" "))),
        1 => nasty_text(),
        1 => (1usize..3_000).prop_map(|n| format!("{{ me(a: {}1{}) }}", "[".repeat(n), "]".repeat(n))),
    ];
    (document, variables)
        .prop_map(|(query, variables)| json!({"query": query, "variables": variables}))
}

#[tokio::test]
async fn graphql_documents_and_variables_never_fail_the_server() {
    let server = TestServer::start("").await;
    let token = server.token(&[Role::Officer]);
    let (seed, requests) = samples(gql_request(), cases());
    let (_, raw) = samples(nasty_text(), cases() / 2);
    let bodies = requests.into_iter().map(|r| r.to_string()).chain(raw);
    for (i, body) in bodies.enumerate() {
        let (status, answer) = server.post(Some(&token), body.clone()).await;
        assert!(
            status < 500,
            "{status} for case {i} (JUNCTION_FUZZ_SEED={seed}): {body:.300} -> {answer}"
        );
        for error in answer["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str();
            assert!(
                code.is_some() && code != Some("INTERNAL"),
                "case {i} (JUNCTION_FUZZ_SEED={seed}): {body:.300} -> {error}"
            );
        }
    }
    assert_alive(&server).await;
}

#[test]
fn back_end_xml_never_panics_or_overflows() {
    let element = "[a-z]{1,5}";
    let document = prop_oneof![
        3 => nasty_text(),
        2 => prop::collection::vec((element, nasty_text()), 0..30).prop_map(|parts| {
            parts.into_iter().map(|(e, t)| format!("<{e}>{t}</{e}>")).collect::<String>()
        }),
        1 => (1usize..100_000).prop_map(|n| format!("{}x{}", "<a>".repeat(n), "</a>".repeat(n))),
        1 => (1usize..10_000).prop_map(|n| format!("<?xml version=\"1.0\"?><!DOCTYPE a [{}]><a/>", "<!ENTITY e \"&e;&e;\">".repeat(n % 50))),
    ];
    let (_, docs) = samples(document, cases());
    for doc in docs {
        let _ = junction_connectors::xml::parse(&doc);
    }
}

#[test]
fn configuration_files_never_panic_the_loader() {
    let line = prop_oneof![
        Just("[server]".to_string()),
        Just("[[case_types]]".to_string()),
        Just("[[case_types.fields]]".to_string()),
        Just("[[connectors]]".to_string()),
        Just("[limits]".to_string()),
        "[a-z_]{1,12} = \"[ -~]{0,12}\"",
        "[a-z_]{1,12} = -?[0-9]{1,20}",
        (1usize..5_000).prop_map(|n| format!("x = {}1{}", "[".repeat(n), "]".repeat(n))),
        (1usize..5_000).prop_map(|n| format!("y = {}{}", "{a = ".repeat(n), "}".repeat(n))),
        nasty_text(),
    ];
    let (seed, files) = samples(prop::collection::vec(line, 0..20), cases());
    let dir = tempfile::tempdir().unwrap();
    for (i, lines) in files.into_iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, lines.join("\n")).unwrap();
        // Loading runs on a thread with a small stack (1 MiB: an eighth of the main thread's,
        // on which `junction` loads its configuration), so recursion the nesting bound failed
        // to stop would show here. It was 256 KiB until the unoptimised loader's frames, with
        // the configuration's newer sections, came within reach of that at the bound's depth
        // (32): the bound, not the stack, is what keeps the loader safe.
        let result = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || junction_server::config::load(&path).map(|_| ()))
            .unwrap()
            .join();
        assert!(
            result.is_ok(),
            "the loader panicked on case {i} (JUNCTION_FUZZ_SEED={seed})"
        );
    }
    // Deep nesting is refused by name, with its line, before any parser recurses into it.
    let path = dir.path().join("deep.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nx = {}1{}\n",
            "[".repeat(5_000),
            "]".repeat(5_000)
        ),
    )
    .unwrap();
    let err = junction_server::config::load(&path)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("deep.toml:2") && err.contains("nested deeper than 32"),
        "{err}"
    );
}

async fn assert_alive(server: &TestServer) {
    let resp = server
        .client
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
}
