//! An email connector's parameters: the SMTP relay, how it is secured, templates, recipients.

use serde::{Deserialize, Serialize};

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

impl crate::KindParams for EmailParams {
    fn timeout_secs(&self) -> u64 {
        self.timeout_secs
    }

    fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        self.password
            .as_deref()
            .map(|s| vec![("password", s)])
            .unwrap_or_default()
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        for address in &self.to {
            if !address.contains('@') {
                problems.push(("to", format!("`{address}` is not an email address")));
            }
        }
        let loopback = matches!(self.smtp_host.as_str(), "localhost" | "127.0.0.1" | "::1");
        if self.tls == EmailTls::None && !loopback {
            problems.push((
                "tls",
                "`none` is allowed only for a loopback SMTP server".into(),
            ));
        }
        problems
    }

    fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<crate::Capabilities, String> {
        let password = self.password.as_deref().map(secret).transpose()?;
        let connector = std::sync::Arc::new(super::Email::new(self.clone(), password)?);
        let mut caps = crate::Capabilities::of(connector.clone());
        caps.deliver_case = Some(connector);
        Ok(caps)
    }
}
