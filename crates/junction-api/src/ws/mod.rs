//! GraphQL over WebSocket (`graphql-transport-ws`) on `GET /graphql`.
//!
//! The connection authenticates at `connection_init` by the same JWT rules as HTTP (the token in
//! the payload's `authorization`, as `Bearer …`), and closes with 4401 when the token expires
//! or 4403 when a partner's agreement stops granting access. Every operation started on the
//! connection writes one audit record; every disclosure of personal data in a message is
//! durable in the audit chain before the message is sent.

mod connection;
mod executor;
mod frames;
mod init;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::WebSocketUpgrade;

use crate::layer::ApiState;

/// The subprotocol spoken.
pub const SUBPROTOCOL: &str = "graphql-transport-ws";

/// The largest message a client may send.
const MAX_CLIENT_MESSAGE: usize = 64 * 1024;

/// Messages written before one flush, when several are ready at once.
const COALESCE: usize = 64;

/// Client messages waiting for async-graphql's protocol handler before the client is told to
/// slow down.
const INBOX: usize = 64;

/// How long a client has to send `connection_init`.
const INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Upgrades the request and serves the connection.
pub(crate) fn upgrade(
    state: Arc<ApiState>,
    upgrade: WebSocketUpgrade,
    request_id: String,
    client_addr: Option<String>,
) -> axum::response::Response {
    upgrade
        .protocols([SUBPROTOCOL])
        // Small buffers: a thousand idle subscriptions should not cost a thousand 128 KiB
        // buffers. Client messages are small GraphQL documents.
        .read_buffer_size(4 * 1024)
        .write_buffer_size(8 * 1024)
        .max_message_size(MAX_CLIENT_MESSAGE)
        .max_frame_size(MAX_CLIENT_MESSAGE)
        .on_upgrade(move |socket| connection::serve(state, socket, request_id, client_addr))
}
