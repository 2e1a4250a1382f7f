//! Secrets: written in the file as `${VAR}`, read from the environment, never printed.

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// A reference to an environment variable holding a secret, as the file writes it: `${VAR}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretRef(pub String);

impl SecretRef {
    /// The variable's name, if the reference is well formed.
    pub fn var_name(&self) -> Option<&str> {
        let name = self.0.strip_prefix("${")?.strip_suffix('}')?;
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
        ok.then_some(name)
    }

    /// Reads the secret from the environment.
    pub fn resolve(&self) -> Result<SecretValue, String> {
        let name = self
            .var_name()
            .ok_or("secrets must be written as `${VAR}`, naming an environment variable (A-Z, 0-9, _); never put the value in the file")?;
        match std::env::var(name) {
            Ok(v) if !v.is_empty() => Ok(SecretValue(SecretString::from(v))),
            _ => Err(format!("environment variable `{name}` is not set")),
        }
    }
}

/// A resolved secret. Its `Debug` output is redacted.
#[derive(Clone)]
pub struct SecretValue(SecretString);

impl SecretValue {
    pub fn new(value: String) -> Self {
        SecretValue(SecretString::from(value))
    }

    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_must_name_a_variable() {
        assert_eq!(
            SecretRef("${SMTP_PASSWORD}".into()).var_name(),
            Some("SMTP_PASSWORD")
        );
        assert_eq!(SecretRef("hunter2".into()).var_name(), None);
        assert_eq!(SecretRef("${lower}".into()).var_name(), None);
        assert!(
            SecretRef("hunter2".into())
                .resolve()
                .unwrap_err()
                .contains("never put the value")
        );
    }

    #[test]
    fn debug_never_shows_the_value() {
        assert_eq!(
            format!("{:?}", SecretValue::new("hunter2".into())),
            "[redacted]"
        );
    }
}
