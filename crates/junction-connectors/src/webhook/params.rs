//! A webhook connector's parameters: where to POST, the signing key, the timeout.

use serde::{Deserialize, Serialize};

use crate::params::default_timeout;

/// POSTs cases as signed JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookParams {
    pub url: String,
    /// `${VAR}` reference to the HMAC-SHA256 signing key.
    pub signing_secret: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}
