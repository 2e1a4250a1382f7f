//! The `junction` binary's library: configuration, telemetry, the HTTP router, TLS, workers and
//! the command line. The only crate that knows every other one; it wires them and decides
//! nothing they decide.

mod api_keys_cli;
pub mod app;
pub mod checkpoints;
pub mod cli;
pub mod config;
mod connections;
mod connectors_cli;
mod health;
pub mod request_id;
mod route_cli;
mod schedules_cli;
mod secret_file;
pub mod serve;
pub mod sim;
pub mod telemetry;
pub mod workers;

pub use app::{App, RunningServer, start};
