//! The closed set of connector kinds and each kind's parameters.
//!
//! Secret parameters hold `${VAR}` references to environment variables, never values; they are
//! resolved where the connector is built, and listed by [`ConnectorParams::secret_refs`].

use serde::{Deserialize, Serialize};

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

/// How an email connector secures its SMTP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum EmailTls {
    /// Upgrade with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
    /// No encryption: accepted only for a loopback server.
    None,
}

/// Sends cases by email over SMTP.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailParams {
    pub smtp_host: String,
    #[serde(default = "default_smtp_port")]
    pub smtp_port: u16,
    #[serde(default)]
    pub tls: EmailTls,
    /// A PEM file of certificates to trust for the relay besides the public roots: a council's
    /// private certificate authority, or the relay's own certificate.
    pub ca_file: Option<String>,
    pub username: Option<String>,
    /// `${VAR}` reference.
    pub password: Option<String>,
    pub from: String,
    /// Seconds to wait for the SMTP server at each step.
    #[serde(default = "default_smtp_timeout")]
    pub timeout_secs: u64,
    /// A minijinja template for the subject, replacing the built-in one.
    pub subject_template: Option<String>,
    /// A minijinja template for the plain-text body, replacing the built-in one.
    pub body_template: Option<String>,
    /// Fixed recipients. Leave empty for the connector that carries cases to agencies with
    /// no integration: each case then goes to its agency's address.
    #[serde(default)]
    pub to: Vec<String>,
    /// Attach the files that came with the case (uploaded photos).
    #[serde(default = "yes")]
    pub attach_files: bool,
}

fn yes() -> bool {
    true
}

fn default_smtp_port() -> u16 {
    587
}

fn default_smtp_timeout() -> u64 {
    30
}

/// POSTs cases as signed JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookParams {
    pub url: String,
    /// `${VAR}` reference to the HMAC-SHA256 signing key.
    pub signing_secret: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
}

/// Sends cases to an Open311 GeoReport v2 back-end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Open311Params {
    /// Base URL, e.g. `https://council.example/open311/v2/`.
    pub endpoint: String,
    /// `${VAR}` reference.
    pub api_key: String,
    pub jurisdiction_id: Option<String>,
    /// The attribute our case id is sent under (`fixmystreet_id` for servers that expect it).
    #[serde(default = "default_id_attribute")]
    pub id_attribute: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Junction case type code to the back-end's service code, where they differ.
    #[serde(default)]
    pub service_codes: std::collections::BTreeMap<String, String>,
    /// After an attempt that got no answer, ask `GET requests.xml?<id_attribute>=<case id>`
    /// (with `start_date`/`end_date` around the attempts) whether the back-end holds the case
    /// before anything is sent again. A request counts as ours only when it carries the id
    /// attribute (as an element of that name, or in `<attributes>`) with exactly our case id,
    /// and exactly one does; only an empty list proves it did not arrive; anything else is
    /// inconclusive, asked again later, then parked for a person.
    #[serde(default)]
    pub lookup_by_id: bool,
    /// The back-end promises to keep one request per id attribute value: a resend of the same
    /// case gets the same reference and creates nothing. Set it only when the council's system
    /// really does this; with it, an unanswered attempt is simply sent again.
    #[serde(default)]
    pub dedupes_on_id: bool,

    /// Upload the files that came with the case as multipart parts (`photo1..N`), as
    /// FixMyStreet does with `upload_files`, for back-ends that cannot fetch a `media_url`.
    #[serde(default)]
    pub upload_files: bool,
}

fn default_id_attribute() -> String {
    "junction_id".into()
}

fn default_timeout() -> u64 {
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
    /// Parses `params` for `kind`, reporting unknown keys through `unknown` (as dotted paths)
    /// rather than failing on the first, so a caller can list them all.
    pub fn parse(
        kind: ConnectorKind,
        params: serde_json::Value,
        unknown: &mut dyn FnMut(String),
    ) -> Result<Self, String> {
        fn typed<T: serde::de::DeserializeOwned>(
            v: serde_json::Value,
            unknown: &mut dyn FnMut(String),
        ) -> Result<T, String> {
            let mut seen = Vec::new();
            let value: Result<T, _> = serde_ignored_compat::deserialize(v, &mut |p| seen.push(p));
            for p in seen {
                unknown(p);
            }
            value.map_err(|e| e.to_string())
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

/// Minimal unknown-key collection for `serde_json::Value` input, so this crate needs no
/// configuration-format crate: a field `deny_unknown_fields` would stop at the first.
mod serde_ignored_compat {
    use serde::de::DeserializeOwned;
    use serde_json::Value;

    pub fn deserialize<T: DeserializeOwned>(
        value: Value,
        seen: &mut dyn FnMut(String),
    ) -> Result<T, serde_json::Error> {
        // Try strictly first; on unknown-field errors, strip each unknown key, note it, retry.
        let mut value = value;
        for _ in 0..64 {
            match serde_json::from_value::<T>(value.clone()) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let msg = e.to_string();
                    let Some(field) = msg
                        .strip_prefix("unknown field `")
                        .and_then(|r| r.split('`').next())
                    else {
                        return Err(e);
                    };
                    seen(field.to_string());
                    if let Value::Object(map) = &mut value {
                        map.remove(field);
                    } else {
                        return Err(e);
                    }
                }
            }
        }
        serde_json::from_value(value)
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
