//! Junction's integration tests: one binary, each module one area.

mod abuse;
mod api;
mod architecture;
mod auth;
mod cli;
mod config;
mod connectors;
mod crash;
mod delivery;
mod exactly_once;
mod fault_run;
mod fuzz;
mod load_faults;
mod load_run;
mod open311;
mod open311_access;
mod open311_resends;
mod open311_uploads;
mod process;
mod schema;
mod sharing;
mod store;
mod support;
mod tls;
mod workers_apart;
