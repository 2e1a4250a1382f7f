//! The `junction` binary.

use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // reqwest, axum-server and sqlx share rustls; ring is the one provider built in.
    let _ = rustls::crypto::ring::default_provider().install_default();
    junction_server::cli::run(junction_server::cli::Cli::parse()).await
}
