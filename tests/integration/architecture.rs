//! The dependency rules of docs/ARCHITECTURE.md, checked over `cargo metadata`.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Which of our crates each crate may depend on (normal and build dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("junction-domain", &[]),
    ("junction-migrations", &[]),
    (
        "junction-store",
        &["junction-domain", "junction-migrations"],
    ),
    ("junction-connectors", &["junction-domain"]),
    (
        "junction-jobs",
        &["junction-domain", "junction-store", "junction-connectors"],
    ),
    (
        "junction-api",
        &["junction-domain", "junction-store", "junction-connectors"],
    ),
    (
        "junction-server",
        &[
            "junction-domain",
            "junction-store",
            "junction-connectors",
            "junction-jobs",
            "junction-api",
            "junction-migrations",
        ],
    ),
];

/// Crates that must stay free of I/O and frameworks.
const PURE: &[(&str, &[&str])] = &[(
    "junction-domain",
    &[
        "tokio",
        "sea-orm",
        "sqlx",
        "async-graphql",
        "axum",
        "reqwest",
        "lettre",
    ],
)];

#[test]
fn crate_dependencies_point_one_way() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("cargo metadata runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).unwrap();
    let ours: BTreeSet<String> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut violations = Vec::new();
    for package in meta["packages"].as_array().unwrap() {
        let name = package["name"].as_str().unwrap();
        let deps: Vec<(&str, bool)> = package["dependencies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["name"].as_str().unwrap(),
                    d["kind"].as_str() == Some("dev"),
                )
            })
            .collect();
        if name == "junction-tests" {
            continue; // tests may depend on anything
        }
        let Some(permitted) = allowed.get(name) else {
            violations.push(format!("{name} is not in the architecture's crate list"));
            continue;
        };
        for (dep, dev) in &deps {
            if ours.contains(*dep) && !dev && !permitted.contains(dep) {
                violations.push(format!("{name} → {dep} is not an allowed edge"));
            }
        }
        if let Some((_, banned)) = PURE.iter().find(|(p, _)| *p == name) {
            for (dep, _) in &deps {
                if banned.contains(dep) {
                    violations.push(format!("{name} must not depend on {dep}"));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "architecture violations:\n{}",
        violations.join("\n")
    );
}
