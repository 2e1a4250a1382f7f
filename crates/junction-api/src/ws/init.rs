//! `connection_init`: the token in its payload authenticates the connection, which closes
//! itself when that token expires or is revoked.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::Data;

use crate::auth::TokenInfo;
use crate::graphql::access::DisclosureLog;
use crate::graphql::subscription::ConnectionControl;
use crate::layer::ApiState;
use crate::{ErrorCode, RequestAudit, RequestCtx};

/// What `connection_init` needs from its connection, cloned into async-graphql's handler.
#[derive(Clone)]
pub(super) struct Init {
    pub(super) state: Arc<ApiState>,
    pub(super) ctx: Arc<OnceLock<RequestCtx>>,
    pub(super) disclosures: DisclosureLog,
    pub(super) control: ConnectionControl,
    /// Set when the token was refused, so the close that follows says 4403.
    pub(super) auth_failed: Arc<AtomicBool>,
    pub(super) request_id: String,
    pub(super) client_addr: Option<String>,
}

impl Init {
    /// Authenticates the connection from the `connection_init` payload, or refuses it on the
    /// record.
    pub(super) async fn accept(self, payload: serde_json::Value) -> async_graphql::Result<Data> {
        let token = ["authorization", "Authorization"]
            .iter()
            .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
            .map(|v| crate::auth::bearer(v).unwrap_or(v.trim()).to_string());
        let verified = match token {
            Some(t) => self.state.auth.verify_token(&t).map_err(|e| e.to_string()),
            None => Err(crate::AuthError::Missing.to_string()),
        };
        let token = match verified {
            Ok(v) => v,
            Err(message) => {
                self.auth_failed.store(true, Ordering::SeqCst);
                let entry = RequestAudit::by(None)
                    .request(&self.request_id, self.client_addr.clone())
                    .operation("subscription", Some("connection_init".into()))
                    .ended(Some(ErrorCode::Unauthenticated), Duration::ZERO);
                if let Err(e) = self.state.audit.record(entry).await {
                    tracing::error!(error = %e, "audit record for a refused connection not written");
                }
                return Err(async_graphql::Error::new(message));
            }
        };
        let ctx = RequestCtx {
            principal: token.principal.clone(),
            request_id: self.request_id.clone(),
            client_addr: self.client_addr.clone(),
            purpose: payload
                .get("purpose")
                .and_then(|v| v.as_str())
                .map(String::from),
            channel: "websocket",
        };
        let _ = self.ctx.set(ctx.clone());
        self.watch_token(token);
        let mut data = Data::default();
        data.insert(ctx);
        data.insert(self.disclosures);
        data.insert(self.control);
        Ok(data)
    }

    /// Closes the connection when the token expires, or as soon as it is revoked.
    fn watch_token(&self, token: TokenInfo) {
        let remaining = (token.exp - chrono::Utc::now().timestamp()).max(0) as u64;
        let timer = self.control.clone();
        let auth = self.state.auth.clone();
        let mut revocations = auth.revocations().changes();
        tokio::spawn(async move {
            let expiry = tokio::time::sleep(Duration::from_secs(remaining));
            tokio::pin!(expiry);
            loop {
                tokio::select! {
                    _ = &mut expiry => {
                        timer.close(4401, "token expired");
                        return;
                    }
                    changed = revocations.changed() => {
                        if changed.is_err() {
                            return;
                        }
                        if auth.is_revoked(&token) {
                            timer.close(4401, "token revoked");
                            return;
                        }
                    }
                    _ = timer.0.closed() => return,
                }
            }
        });
    }
}
