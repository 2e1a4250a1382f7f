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

impl crate::KindParams for WebhookParams {
    fn timeout_secs(&self) -> u64 {
        self.timeout_secs
    }

    fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        vec![("signing_secret", self.signing_secret.as_str())]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        if crate::kind::is_http_url(&self.url) {
            Vec::new()
        } else {
            vec![("url", "must be an http:// or https:// URL".into())]
        }
    }

    fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<crate::Capabilities, String> {
        let connector = std::sync::Arc::new(super::Webhook::new(
            self.clone(),
            secret(&self.signing_secret)?,
        )?);
        let mut caps = crate::Capabilities::of(connector.clone());
        caps.deliver_case = Some(connector);
        Ok(caps)
    }
}
