//! The closed set of connector kinds and each kind's parameters.
//!
//! Secret parameters hold `${VAR}` references to environment variables, never values; they are
//! resolved where the connector is built, and listed by [`ConnectorParams::secret_refs`].

use crate::Capabilities;
use crate::kind::KindParams;

pub use crate::email::params::{EmailParams, EmailTls};
pub use crate::open311::params::Open311Params;
pub use crate::webhook::params::WebhookParams;

/// The timeout of a connector that does not set one, in seconds: council systems are slow.
pub(crate) fn default_timeout() -> u64 {
    60
}

/// The closed set of kinds: each is named once here, with its wire name, its enum variant and
/// its parameter type (which implements [`KindParams`]). Adding a kind is its folder and one
/// line in this table.
macro_rules! kinds {
    ($($variant:ident = $name:literal => $params:ty,)+) => {
        /// Every kind of connector Junction knows.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ConnectorKind {
            $($variant,)+
        }

        impl ConnectorKind {
            pub const ALL: &'static [ConnectorKind] = &[$(ConnectorKind::$variant,)+];

            /// The kind's name in the configuration (`kind = "open311"`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ConnectorKind::$variant => $name,)+
                }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|k| k.as_str() == s)
            }
        }

        /// Parameters of any kind.
        #[derive(Debug, Clone, PartialEq)]
        pub enum ConnectorParams {
            $($variant($params),)+
        }

        impl ConnectorParams {
            /// Parses `params` for `kind`, reporting every unknown key through `unknown` (as a
            /// dotted path) rather than failing on the first, so a caller can list them all.
            /// This is the one way parameters are read: the structs do not refuse unknown keys
            /// themselves.
            pub fn parse(
                kind: ConnectorKind,
                params: serde_json::Value,
                unknown: &mut dyn FnMut(String),
            ) -> Result<Self, String> {
                Ok(match kind {
                    $(ConnectorKind::$variant => ConnectorParams::$variant(typed(params, unknown)?),)+
                })
            }

            pub fn kind(&self) -> ConnectorKind {
                match self {
                    $(ConnectorParams::$variant(_) => ConnectorKind::$variant,)+
                }
            }

            fn params(&self) -> &dyn KindDyn {
                match self {
                    $(ConnectorParams::$variant(p) => p,)+
                }
            }
        }
    };
}

kinds! {
    Email = "email" => EmailParams,
    Webhook = "webhook" => WebhookParams,
    Open311 = "open311" => Open311Params,
}

fn typed<T: serde::de::DeserializeOwned>(
    v: serde_json::Value,
    unknown: &mut dyn FnMut(String),
) -> Result<T, String> {
    serde_ignored::deserialize(v, |path| unknown(path.to_string())).map_err(|e| e.to_string())
}

/// [`KindParams`] without its `Sized` parts, so the enum can hand out any kind's parameters.
trait KindDyn {
    fn timeout_secs(&self) -> u64;
    fn secret_refs(&self) -> Vec<(&'static str, &str)>;
    fn check(&self) -> Vec<(&'static str, String)>;
    fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Capabilities, String>;
}

impl<T: KindParams> KindDyn for T {
    fn timeout_secs(&self) -> u64 {
        KindParams::timeout_secs(self)
    }
    fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        KindParams::secret_refs(self)
    }
    fn check(&self) -> Vec<(&'static str, String)> {
        KindParams::check(self)
    }
    fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Capabilities, String> {
        KindParams::build(self, secret)
    }
}

impl ConnectorParams {
    /// How long one attempt may take, in seconds.
    pub fn timeout_secs(&self) -> u64 {
        self.params().timeout_secs()
    }

    /// Each secret parameter's name and its `${VAR}` reference.
    pub fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        self.params().secret_refs()
    }

    /// Problems a type cannot express: bad URLs, plain SMTP off loopback, empty lists.
    pub fn check(&self) -> Vec<(&'static str, String)> {
        self.params().check()
    }

    /// Builds the connector these parameters describe, with its secrets resolved by `secret`.
    pub fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Capabilities, String> {
        self.params().build(secret)
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
