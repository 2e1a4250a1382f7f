//! The closed set of connector kinds and each kind's parameters.
//!
//! Secret parameters hold `${VAR}` references to environment variables, never values; they are
//! resolved where the connector is built, and listed by [`ConnectorParams::secret_refs`].

pub use crate::email::params::{EmailParams, EmailTls};
pub use crate::open311::params::Open311Params;
pub use crate::webhook::params::WebhookParams;

/// Every kind of connector Junction knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ConnectorKind {
    Email,
    Webhook,
    Open311,
}

impl ConnectorKind {
    pub const ALL: [ConnectorKind; 3] = [
        ConnectorKind::Email,
        ConnectorKind::Webhook,
        ConnectorKind::Open311,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConnectorKind::Email => "email",
            ConnectorKind::Webhook => "webhook",
            ConnectorKind::Open311 => "open311",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The timeout of a connector that does not set one, in seconds: council systems are slow.
pub(crate) fn default_timeout() -> u64 {
    60
}

/// Parameters of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum ConnectorParams {
    Email(EmailParams),
    Webhook(WebhookParams),
    Open311(Open311Params),
}

impl ConnectorParams {
    /// Parses `params` for `kind`, reporting every unknown key through `unknown` (as a dotted
    /// path) rather than failing on the first, so a caller can list them all. This is the one
    /// way parameters are read: the structs do not refuse unknown keys themselves.
    pub fn parse(
        kind: ConnectorKind,
        params: serde_json::Value,
        unknown: &mut dyn FnMut(String),
    ) -> Result<Self, String> {
        fn typed<T: serde::de::DeserializeOwned>(
            v: serde_json::Value,
            unknown: &mut dyn FnMut(String),
        ) -> Result<T, String> {
            serde_ignored::deserialize(v, |path| unknown(path.to_string()))
                .map_err(|e| e.to_string())
        }
        Ok(match kind {
            ConnectorKind::Email => ConnectorParams::Email(typed(params, unknown)?),
            ConnectorKind::Webhook => ConnectorParams::Webhook(typed(params, unknown)?),
            ConnectorKind::Open311 => ConnectorParams::Open311(typed(params, unknown)?),
        })
    }

    /// How long one attempt may take, in seconds.
    pub fn timeout_secs(&self) -> u64 {
        match self {
            ConnectorParams::Email(p) => p.timeout_secs,
            ConnectorParams::Webhook(p) => p.timeout_secs,
            ConnectorParams::Open311(p) => p.timeout_secs,
        }
    }

    /// Each secret parameter's name and its `${VAR}` reference.
    pub fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        match self {
            ConnectorParams::Email(p) => p
                .password
                .as_deref()
                .map(|s| vec![("password", s)])
                .unwrap_or_default(),
            ConnectorParams::Webhook(p) => vec![("signing_secret", p.signing_secret.as_str())],
            ConnectorParams::Open311(p) => vec![("api_key", p.api_key.as_str())],
        }
    }

    /// Problems a type cannot express: bad URLs, plain SMTP off loopback, empty lists.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let url_ok = |u: &str| u.starts_with("https://") || u.starts_with("http://");
        match self {
            ConnectorParams::Email(p) => {
                for address in &p.to {
                    if !address.contains('@') {
                        problems.push(("to", format!("`{address}` is not an email address")));
                    }
                }
                let loopback = matches!(p.smtp_host.as_str(), "localhost" | "127.0.0.1" | "::1");
                if p.tls == EmailTls::None && !loopback {
                    problems.push((
                        "tls",
                        "`none` is allowed only for a loopback SMTP server".into(),
                    ));
                }
            }
            ConnectorParams::Webhook(p) => {
                if !url_ok(&p.url) {
                    problems.push(("url", "must be an http:// or https:// URL".into()));
                }
            }
            ConnectorParams::Open311(p) => {
                if !url_ok(&p.endpoint) {
                    problems.push(("endpoint", "must be an http:// or https:// URL".into()));
                }
                if p.id_attribute.trim().is_empty() {
                    problems.push(("id_attribute", "must not be empty".into()));
                }
            }
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_every_unknown_key() {
        let mut unknown = Vec::new();
        let params = json!({"url": "https://x.example/hook", "signing_secret": "${S}", "colour": 1, "size": 2});
        let parsed =
            ConnectorParams::parse(ConnectorKind::Webhook, params, &mut |k| unknown.push(k))
                .unwrap();
        unknown.sort();
        assert_eq!(unknown, ["colour", "size"]);
        assert_eq!(parsed.secret_refs(), vec![("signing_secret", "${S}")]);
    }

    #[test]
    fn plain_smtp_only_on_loopback() {
        let params =
            json!({"smtp_host": "mail.example", "tls": "none", "from": "a@b.c", "to": ["x@y.z"]});
        let parsed = ConnectorParams::parse(ConnectorKind::Email, params, &mut |_| {}).unwrap();
        assert_eq!(parsed.check()[0].0, "tls");
    }
}
