//! Connectors: one module per kind of external system, behind a small set of traits.
//!
//! This crate knows HTTP, SMTP and files; it knows nothing of the database, GraphQL or the
//! queue. The set of kinds is closed ([`ConnectorKind`], one line per kind in `params.rs`);
//! each kind is a folder with its documented parameters ([`KindParams`]: checked, secrets
//! named, built into a connector) and its client, and every error says whether it is worth
//! retrying and whether the request may have arrived. docs/connectors/ADDING.md walks through
//! adding a kind.

mod contract;
pub mod email;
mod error;
mod kind;
pub mod media;
pub mod open311;
mod params;
pub mod webhook;
pub mod xml;

pub use contract::{Accepted, Deliver, OutFile, Outbound, Refused};
pub use error::ConnectorError;
pub use kind::KindParams;
pub use params::{
    ConnectorKind, ConnectorParams, EmailParams, EmailTls, Open311Params, WebhookParams,
};

use std::sync::Arc;

/// Builds the delivery connector `params` describe. `secret` turns a `${VAR}` reference into
/// its value.
pub fn build(
    params: &ConnectorParams,
    secret: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Arc<dyn Deliver>, String> {
    params.build(secret)
}
