//! A webhook receiver as a [`Connector`]: it is healthy when it answers a `HEAD` at its URL
//! with anything but a server error. Nothing is posted: a health check must change nothing.

use crate::ConnectorKind;
use crate::connector::{Connector, Health};
use crate::error::from_reqwest;

use super::Webhook;

#[async_trait::async_trait]
impl Connector for Webhook {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Webhook
    }

    fn target(&self) -> String {
        self.url.clone()
    }

    async fn health_check(&self) -> Health {
        match self.client.head(&self.url).send().await {
            Ok(resp) if resp.status().is_server_error() => Health::Unhealthy(format!(
                "the receiver answered HEAD with HTTP {}",
                resp.status().as_u16()
            )),
            // A receiver that takes only POST answers 405: it is there.
            Ok(resp) => Health::Healthy(format!(
                "the receiver answered HEAD with HTTP {}",
                resp.status().as_u16()
            )),
            Err(e) => Health::Unhealthy(from_reqwest(&e, "reaching the receiver").message),
        }
    }
}
