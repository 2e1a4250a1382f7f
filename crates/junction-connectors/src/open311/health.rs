//! An Open311 back-end as a [`Connector`]: it is healthy when its service list answers as
//! Open311 does.

use crate::connector::{Connector, Health};
use crate::error::from_reqwest;
use crate::{ConnectorKind, xml};

use super::Open311;

/// The most of a service list read for a health check.
const MAX_SERVICES_BYTES: usize = 2 << 20;

#[async_trait::async_trait]
impl Connector for Open311 {
    fn kind(&self) -> ConnectorKind {
        ConnectorKind::Open311
    }

    fn target(&self) -> String {
        self.endpoint.clone()
    }

    async fn health_check(&self) -> Health {
        let mut query = Vec::new();
        if let Some(j) = &self.params.jurisdiction_id {
            query.push(("jurisdiction_id", j.clone()));
        }
        let sent = self
            .client
            .get(format!("{}services.xml", self.endpoint))
            .query(&query)
            .send()
            .await;
        let mut resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                return Health::Unhealthy(from_reqwest(&e, "asking for services.xml").message);
            }
        };
        let status = resp.status();
        let mut body = Vec::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) if body.len() + chunk.len() <= MAX_SERVICES_BYTES => {
                    body.extend_from_slice(&chunk)
                }
                Ok(Some(_)) => {
                    return Health::Unhealthy(format!(
                        "services.xml is larger than {MAX_SERVICES_BYTES} bytes"
                    ));
                }
                Ok(None) => break,
                Err(e) => {
                    return Health::Unhealthy(from_reqwest(&e, "reading services.xml").message);
                }
            }
        }
        let text = String::from_utf8_lossy(&body);
        if !status.is_success() {
            return Health::Unhealthy(format!(
                "services.xml answered HTTP {}: {}",
                status.as_u16(),
                super::describe_errors(&text)
            ));
        }
        match xml::parse(&text) {
            Ok(root) if root.name == "services" => Health::Healthy(format!(
                "services.xml lists {} services",
                root.children("service").count()
            )),
            _ => Health::Unhealthy(format!(
                "services.xml is not an Open311 service list: {}",
                text.chars().take(120).collect::<String>()
            )),
        }
    }
}
