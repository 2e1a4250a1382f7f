//! Connectors: one module per kind of external system, behind a small set of traits.
//!
//! This crate knows HTTP, SMTP and files; it knows nothing of the database, GraphQL or the
//! queue. The set of kinds is closed ([`ConnectorKind`]), each kind has one documented
//! parameter type that refuses unknown keys, and every error says whether it is worth retrying.
//! Delivery itself arrives with the kinds' implementations; today the crate defines what a
//! connector is configured with, so configuration is checked in full from the start.

mod error;
mod params;
pub mod xml;

pub use error::ConnectorError;
pub use params::{
    ConnectorKind, ConnectorParams, EmailParams, EmailTls, Open311Params, WebhookParams,
};
