//! Connectors: one module per kind of external system, behind a small set of traits.
//!
//! This crate knows HTTP, SMTP and files; it knows nothing of the database, GraphQL or the
//! queue. The set of kinds is closed ([`ConnectorKind`]), each kind has one documented
//! parameter type that refuses unknown keys, and every error says whether it is worth retrying.
//! Delivery itself arrives with the kinds' implementations; today the crate defines what a
//! connector is configured with, so configuration is checked in full from the start.

mod contract;
pub mod email;
mod error;
pub mod open311;
mod params;
pub mod webhook;
pub mod xml;

pub use contract::{Accepted, Deliver, OutFile, Outbound, Refused};
pub use error::ConnectorError;
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
    Ok(match params {
        ConnectorParams::Open311(p) => {
            Arc::new(open311::Open311::new(p.clone(), secret(&p.api_key)?)?)
        }
        ConnectorParams::Webhook(p) => Arc::new(webhook::Webhook::new(
            p.clone(),
            secret(&p.signing_secret)?,
        )?),
        ConnectorParams::Email(p) => {
            let password = p.password.as_deref().map(secret).transpose()?;
            Arc::new(email::Email::new(p.clone(), password)?)
        }
    })
}
