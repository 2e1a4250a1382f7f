//! What a resolver knows about the request it serves.

use junction_domain::{Actor, Principal};

/// Put into every GraphQL request's data by the HTTP handler.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    pub principal: Principal,
    pub request_id: String,
    pub client_addr: Option<String>,
    /// The purpose stated in the `Junction-Purpose` header (or the WebSocket init payload).
    pub purpose: Option<String>,
    /// `http` or `websocket`: recorded with disclosures.
    pub channel: &'static str,
}

impl RequestCtx {
    /// The actor that audit entries of this request name.
    pub fn actor(&self) -> Actor {
        Actor {
            subject: self.principal.subject.clone(),
            agency: self.principal.agency.clone(),
            roles: self
                .principal
                .roles
                .iter()
                .map(|r| r.as_str().to_string())
                .collect(),
            request_id: Some(self.request_id.clone()),
            client_addr: self.client_addr.clone(),
        }
    }
}
