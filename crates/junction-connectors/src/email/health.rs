//! A mail relay as a [`Connector`]: it is healthy when it accepts a connection and greets
//! (with TLS as configured). No message is sent.

use crate::ConnectorKind;
use crate::connector::{Connector, Health};

use super::Email;

#[async_trait::async_trait]
impl Connector for Email {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Email
    }

    fn target(&self) -> String {
        format!("{}:{}", self.params.smtp_host, self.params.smtp_port)
    }

    async fn health_check(&self) -> Health {
        match self.transport.test_connection().await {
            Ok(true) => Health::Healthy(format!("{} accepted a connection", self.target())),
            Ok(false) => Health::Unhealthy(format!("{} did not answer NOOP", self.target())),
            Err(e) => Health::Unhealthy(format!("{}: {e}", self.target())),
        }
    }
}
