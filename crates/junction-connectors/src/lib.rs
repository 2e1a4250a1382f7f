//! Connectors: one folder per kind of external system, each a [`Connector`] (what it is,
//! whether the other side is there, how a failed call is treated) offering capabilities
//! ([`Capabilities`]: deliver a case, and the shapes in [`capabilities`] for updates, imports,
//! categories, feeds and look-ups).
//!
//! This crate knows HTTP, SMTP and files; it knows nothing of the database, GraphQL or the
//! queue. The set of kinds is closed ([`ConnectorKind`], one line per kind in `params.rs`);
//! each kind is a folder with its documented parameters ([`KindParams`]: checked, secrets
//! named, built into its capabilities), its client and its health check, and every error says
//! whether it is worth retrying and whether the request may have arrived.
//! docs/connectors/ADDING.md walks through adding a kind.

pub mod capabilities;
mod connector;
mod contract;
pub mod email;
mod error;
mod kind;
pub mod media;
pub mod open311;
mod params;
pub mod webhook;
pub mod xml;

pub use connector::{Capabilities, Connector, Health, RetryClass};
pub use contract::{Accepted, Deliver, OutFile, Outbound, Refused};
pub use error::ConnectorError;
pub use kind::KindParams;
pub use params::{
    ConnectorKind, ConnectorParams, EmailParams, EmailTls, Open311Params, WebhookParams,
};

/// Builds the connector `params` describe, with what its kind can do. `secret` turns a
/// `${VAR}` reference into its value.
pub fn build(
    params: &ConnectorParams,
    secret: &dyn Fn(&str) -> Result<String, String>,
) -> Result<Capabilities, String> {
    params.build(secret)
}
