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

/// Every Rust source file of ours: (path relative to the workspace, text).
fn sources(under: &str) -> Vec<(String, String)> {
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<(String, String)>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "target") {
                    continue;
                }
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut out = Vec::new();
    walk(&root.join(under), root, &mut out);
    out.sort();
    out
}

/// The code of `text` without comments, roughly: enough to tell a use from a mention.
fn code_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .filter(|l| !l.trim().is_empty())
}

#[test]
fn only_the_store_and_the_queue_know_sql() {
    // The queue module runs apalis on Junction's database (ADR 0007).
    let allowed = |path: &str| {
        path.starts_with("crates/junction-store/") || path == "crates/junction-jobs/src/queue.rs"
    };
    let mut found = Vec::new();
    for (path, text) in sources("crates") {
        if allowed(&path) || path.contains("/benches/") {
            continue;
        }
        for line in code_lines(&text) {
            if line.contains("sqlx") || line.contains("sea_orm") {
                found.push(format!("{path}: {}", line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "SQL outside the store:\n{}",
        found.join("\n")
    );
}

#[test]
fn the_api_uses_every_dependency_it_declares() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates/junction-api");
    let manifest = std::fs::read_to_string(format!("{root}/Cargo.toml")).unwrap();
    let mut in_deps = false;
    let mut declared = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && let Some((name, _)) = line.split_once(['=', '.']) {
            let name = name.trim();
            if !name.is_empty() && !name.starts_with('#') {
                declared.push(name.replace('-', "_"));
            }
        }
    }
    assert!(declared.len() > 5, "read the manifest: {declared:?}");
    let code: String = sources("crates/junction-api")
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    let unused: Vec<&String> = declared
        .iter()
        .filter(|name| {
            !code.contains(&format!("{name}::"))
                && !code.contains(&format!("use {name}"))
                && !code.contains(&format!("{name}!"))
                && !code.contains(&format!("#[{name}"))
        })
        .collect();
    assert!(
        unused.is_empty(),
        "junction-api declares but never uses: {unused:?}"
    );
}

#[test]
fn every_source_file_says_what_it_is() {
    let mut silent = Vec::new();
    for under in ["crates", "migrations", "tests"] {
        for (path, text) in sources(under) {
            if !text.trim_start().starts_with("//!") {
                silent.push(path);
            }
        }
    }
    assert!(
        silent.is_empty(),
        "files without a leading `//!` line:\n{}",
        silent.join("\n")
    );
}

/// The lines of a file before its in-file tests (`#[cfg(test)]`), if any.
fn lines_of_code(text: &str) -> usize {
    text.lines()
        .take_while(|l| !l.trim_start().starts_with("#[cfg(test)]"))
        .count()
}

/// Functions of `text` longer than `max` lines, as `name (n lines)`: a function runs from its
/// `fn` line to the first `}` at the same indentation.
fn long_functions(text: &str, max: usize) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let code = line.trim_start();
        let indent = line.len() - code.len();
        let signature = code.split("fn ").next().is_some_and(|before| {
            before.split_whitespace().all(|w| {
                [
                    "pub",
                    "pub(crate)",
                    "pub(super)",
                    "async",
                    "const",
                    "unsafe",
                ]
                .contains(&w)
            })
        });
        if !signature || !code.contains("fn ") || code.starts_with("//") {
            continue;
        }
        let Some(name) = code
            .split("fn ")
            .nth(1)
            .and_then(|r| r.split(['(', '<']).next())
        else {
            continue;
        };
        let end = lines[i + 1..].iter().position(|l| {
            l.len() - l.trim_start().len() == indent && l.trim_start().starts_with('}')
        });
        if let Some(end) = end
            && end + 2 > max
        {
            found.push(format!("{name} ({} lines)", end + 2));
        }
    }
    found
}

#[test]
fn rooms_stay_small() {
    // Files: at most 500 lines of code (in-file tests apart), everywhere.
    let mut large = Vec::new();
    for under in ["crates", "migrations", "tests"] {
        for (path, text) in sources(under) {
            let n = lines_of_code(&text);
            if n > 500 {
                large.push(format!("{path}: {n} lines"));
            }
        }
    }
    // Functions: at most 100 lines in the product's code (benches and test scenarios read
    // top to bottom as one story, and are exempt).
    let mut long = Vec::new();
    for under in ["crates", "migrations"] {
        for (path, text) in sources(under) {
            if path.contains("/benches/") {
                continue;
            }
            let code: String = text
                .lines()
                .take(lines_of_code(&text))
                .collect::<Vec<_>>()
                .join("\n");
            for f in long_functions(&code, 100) {
                long.push(format!("{path}: {f}"));
            }
        }
    }
    assert!(
        large.is_empty() && long.is_empty(),
        "split these along their seams:\n{}\n{}",
        large.join("\n"),
        long.join("\n")
    );
}

#[test]
fn the_size_check_sees_a_long_function_and_a_short_one() {
    let long = format!(
        "pub async fn big() {{\n{}}}\nfn small() {{\n}}\n",
        "    x;\n".repeat(120)
    );
    assert_eq!(
        long_functions(&long, 100),
        vec!["big (122 lines)".to_string()]
    );
    assert!(long_functions("fn small() {\n    y;\n}\n", 100).is_empty());
    assert_eq!(lines_of_code("a\nb\n#[cfg(test)]\nmod tests {}\n"), 2);
}
