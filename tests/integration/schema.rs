//! `schema.graphql` at the repository root is exactly the served schema.

#[test]
fn schema_file_matches_the_served_schema() {
    let served = junction_api::graphql::sdl();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql");
    if std::env::var("UPDATE_SCHEMA").is_ok_and(|v| v == "1") {
        std::fs::write(path, &served).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        on_disk == served,
        "schema.graphql differs from the served schema.\nRegenerate it with `UPDATE_SCHEMA=1 cargo test --workspace schema_file` \
         (or `cargo run -- schema > schema.graphql`) and review the diff."
    );
}
