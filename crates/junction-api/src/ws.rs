//! GraphQL over WebSocket (`graphql-transport-ws`) on `GET /graphql`.
//!
//! The connection authenticates at `connection_init` by the same JWT rules as HTTP (the token in
//! the payload's `authorization`, as `Bearer …`), and closes with 4401 when the token expires
//! or 4403 when a partner's agreement stops granting access. Every operation started on the
//! connection writes one audit record; every disclosure of personal data in a message is
//! durable in the audit chain before the message is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use async_graphql::http::{
    WebSocket as GraphQLWebSocket, WebSocketProtocols as Protocols, WsMessage,
};
use async_graphql::{Data, Executor, Request as GqlRequest, Response as GqlResponse};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use std::collections::HashMap;

use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll};
use futures::{SinkExt, StreamExt};
use junction_domain::{AuditDisclosure, AuditEntry};
use junction_store::audit::AuditWriter;

use crate::cohort::MemberMessage;
use crate::graphql::JunctionSchema;
use crate::graphql::access::DisclosureLog;
use crate::graphql::subscription::{ConnectionControl, OperationAudited};
use crate::layer::ApiState;
use crate::{ErrorCode, RequestAudit, RequestCtx};

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
        .on_upgrade(move |socket| serve(state, socket, request_id, client_addr))
}

/// Runs the schema for one connection, auditing each operation it starts.
#[derive(Clone)]
struct AuditedExecutor {
    schema: JunctionSchema,
    audit: AuditWriter,
    ctx: Arc<OnceLock<RequestCtx>>,
    /// Most fields a document may select once its fragments are expanded.
    max_fields: usize,
}

impl AuditedExecutor {
    /// Parses the request's document within [`crate::graphql::bounds`] and hands it over
    /// parsed, so the schema does not parse it again; or gives the refusal.
    fn bounded(&self, request: GqlRequest) -> Result<GqlRequest, async_graphql::ServerError> {
        let doc = crate::graphql::bounds::parse(&request.query, self.max_fields)?;
        let mut request = request;
        request.set_parsed_query(doc);
        Ok(request)
    }
}

impl Executor for AuditedExecutor {
    async fn execute(&self, request: GqlRequest) -> GqlResponse {
        let mut response = match self.bounded(request) {
            Ok(request) => self.schema.execute(request).await,
            Err(e) => GqlResponse::from_errors(vec![e]),
        };
        crate::error::code_request_errors(&mut response.errors);
        response
    }

    fn execute_stream(
        &self,
        request: GqlRequest,
        session_data: Option<Arc<Data>>,
    ) -> BoxStream<'static, GqlResponse> {
        let audited = OperationAudited::default();
        let flag = audited.0.clone();
        let operation_name = request.operation_name.clone();
        let variables_hash = crate::layer::variables_hash(&request.variables);
        let started = Instant::now();
        let (operation_type, inner) = match self.bounded(request) {
            Ok(mut request) => {
                let operation_type = request
                    .parsed_query()
                    .ok()
                    .and_then(|doc| {
                        crate::graphql::OperationSummary::from_document(doc)
                            .selected(operation_name.as_deref())
                    })
                    .unwrap_or("unknown");
                let stream =
                    Executor::execute_stream(&self.schema, request.data(audited), session_data);
                (operation_type, stream)
            }
            Err(e) => {
                let refused = GqlResponse::from_errors(vec![e]);
                let stream: BoxStream<'static, GqlResponse> =
                    Box::pin(futures::stream::once(async move { refused }));
                ("unknown", stream)
            }
        };
        let audit = self.audit.clone();
        let ctx = self.ctx.clone();
        let first = Arc::new(AtomicBool::new(true));
        inner
            .then(move |response| {
                let audit = audit.clone();
                let ctx = ctx.clone();
                let first = first.clone();
                let flag = flag.clone();
                let operation_name = operation_name.clone();
                let variables_hash = variables_hash.clone();
                async move {
                    let mut response = response;
                    crate::error::code_request_errors(&mut response.errors);
                    // The first response of an operation that did not audit itself records it.
                    if first.swap(false, Ordering::SeqCst) && !flag.load(Ordering::SeqCst) {
                        let code = response.errors.first().and_then(|e| {
                            match e.extensions.as_ref()?.get("code")? {
                                async_graphql::Value::String(s) => ErrorCode::parse(s),
                                _ => None,
                            }
                        });
                        // Every error carries a code by now; one that does not is internal.
                        let code = code.or_else(|| {
                            (!response.errors.is_empty()).then_some(ErrorCode::Internal)
                        });
                        let entry = RequestAudit::of(
                            ctx.get()
                                .map(|c| c.actor().entry())
                                .unwrap_or_else(|| AuditEntry::now("anonymous")),
                        )
                        .operation(operation_type, operation_name)
                        .variables(Some(variables_hash))
                        .ended(code, started.elapsed());
                        if let Err(e) = audit.record(entry).await {
                            tracing::error!(error = %e, "audit record for a WebSocket operation not written");
                            return GqlResponse::from_errors(vec![async_graphql::ServerError::new(
                                "internal error",
                                None,
                            )]);
                        }
                    }
                    response
                }
            })
            .boxed()
    }
}

async fn serve(
    state: Arc<ApiState>,
    socket: WebSocket,
    request_id: String,
    client_addr: Option<String>,
) {
    let (mut sink, mut incoming) = socket.split();
    // Client messages reach async-graphql's protocol handler through this channel, except
    // subscriptions, which this loop serves through their cohorts.
    let (mut to_protocol, input) = futures::channel::mpsc::channel::<Vec<u8>>(INBOX);
    let ctx_cell: Arc<OnceLock<RequestCtx>> = Arc::new(OnceLock::new());
    let disclosures = DisclosureLog::default();
    let (control, mut close_rx) = ConnectionControl::new();
    let auth_failed = Arc::new(AtomicBool::new(false));
    let executor = AuditedExecutor {
        schema: state.schema.clone(),
        audit: state.audit.clone(),
        ctx: ctx_cell.clone(),
        max_fields: state.limits.max_complexity,
    };
    let on_init = {
        let state = state.clone();
        let ctx_cell = ctx_cell.clone();
        let disclosures = disclosures.clone();
        let control = control.clone();
        let auth_failed = auth_failed.clone();
        let request_id = request_id.clone();
        let client_addr = client_addr.clone();
        move |payload: serde_json::Value| async move {
            let token = ["authorization", "Authorization"]
                .iter()
                .find_map(|k| payload.get(*k).and_then(|v| v.as_str()))
                .map(|v| crate::auth::bearer(v).unwrap_or(v.trim()).to_string());
            let verified = match token {
                Some(t) => state.auth.verify_token(&t).map_err(|e| e.to_string()),
                None => Err(crate::AuthError::Missing.to_string()),
            };
            let token = match verified {
                Ok(v) => v,
                Err(message) => {
                    auth_failed.store(true, Ordering::SeqCst);
                    let entry = RequestAudit::by(None)
                        .request(&request_id, client_addr.clone())
                        .operation("subscription", Some("connection_init".into()))
                        .ended(Some(ErrorCode::Unauthenticated), Duration::ZERO);
                    if let Err(e) = state.audit.record(entry).await {
                        tracing::error!(error = %e, "audit record for a refused connection not written");
                    }
                    return Err(async_graphql::Error::new(message));
                }
            };
            let ctx = RequestCtx {
                principal: token.principal.clone(),
                request_id: request_id.clone(),
                client_addr: client_addr.clone(),
                purpose: payload
                    .get("purpose")
                    .and_then(|v| v.as_str())
                    .map(String::from),
                channel: "websocket",
            };
            let _ = ctx_cell.set(ctx.clone());
            // Close when the token expires, or as soon as it is revoked.
            let remaining = (token.exp - chrono::Utc::now().timestamp()).max(0) as u64;
            let timer = control.clone();
            let auth = state.auth.clone();
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
            let mut data = Data::default();
            data.insert(ctx);
            data.insert(disclosures);
            data.insert(control);
            Ok(data)
        }
    };
    // This connection's subscriptions, each tagged with its id and a generation (an id may be
    // reused once its subscription is complete).
    let mut subscriptions: SelectAll<Tagged> = SelectAll::new();
    let mut running: HashMap<Arc<str>, (u64, AbortHandle)> = HashMap::new();
    let mut generation = 0u64;
    let mut messages = GraphQLWebSocket::new(executor.clone(), input, Protocols::GraphQLWS)
        .on_connection_init(on_init)
        // No protocol keepalive timer: async-graphql's runs on a separate reactor and wakes it on
        // every poll, which costs a system call per message at scale. The init deadline below
        // and TCP keep-alive cover what it would.
        .keepalive_timeout(None);
    let mut shutting_down = state.closing.clone();
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    loop {
        tokio::select! {
            frame = incoming.next() => {
                let bytes = match frame {
                    Some(Ok(Message::Text(t))) => t.as_bytes().to_vec(),
                    Some(Ok(Message::Binary(b))) => b.to_vec(),
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => break,
                };
                match client_message(&bytes) {
                    ClientMessage::Subscribe { id, request } if ctx_cell.get().is_some() => {
                        if running.contains_key(id.as_str()) {
                            let _ = close(&mut sink, 4409, &format!("Subscriber for {id} already exists")).await;
                            break;
                        }
                        let Some(ctx) = ctx_cell.get().cloned() else { continue };
                        let mut session = Data::default();
                        session.insert(ctx.clone());
                        session.insert(disclosures.clone());
                        session.insert(control.clone());
                        match crate::cohort::subscribe(
                            &state.cohorts,
                            &state.schema,
                            executor.clone(),
                            &state.store,
                            *request,
                            &ctx,
                            Arc::new(session),
                            control.clone(),
                        ) {
                            Some(stream) => {
                                let id: Arc<str> = id.into();
                                generation += 1;
                                let (handle, registration) = AbortHandle::new_pair();
                                let tagged = {
                                    let (id, end, this) = (id.clone(), id.clone(), generation);
                                    Abortable::new(stream, registration)
                                        .map(move |m| (id.clone(), this, Some(m)))
                                        .chain(futures::stream::once(async move { (end, this, None) }))
                                };
                                running.insert(id, (generation, handle));
                                subscriptions.push(tagged.boxed());
                            }
                            // Not a subscription: async-graphql's handler runs it.
                            None => {
                                if to_protocol.try_send(bytes).is_err() {
                                    let _ = close(&mut sink, 4429, "too many messages").await;
                                    break;
                                }
                            }
                        }
                    }
                    ClientMessage::Complete { id } if running.contains_key(id.as_str()) => {
                        if let Some((_, handle)) = running.remove(id.as_str()) {
                            handle.abort();
                        }
                    }
                    _ => {
                        if to_protocol.try_send(bytes).is_err() {
                            let _ = close(&mut sink, 4429, "too many messages").await;
                            break;
                        }
                    }
                }
            }
            Some(first) = subscriptions.next(), if !subscriptions.is_empty() => {
                // Whatever else is ready goes out with it, in one flush.
                let mut batch = vec![first];
                while batch.len() < COALESCE {
                    match futures::FutureExt::now_or_never(subscriptions.next()) {
                        Some(Some(item)) => batch.push(item),
                        _ => break,
                    }
                }
                let mut frames = Vec::with_capacity(batch.len());
                let mut extra = Vec::new();
                for (id, this, message) in batch {
                    match message {
                        Some(m) => {
                            extra.extend(m.disclosures.iter().cloned());
                            frames.push(next_frame(&id, &m.payload));
                        }
                        // The subscription ended; one the client completed needs no answer.
                        None if running.get(&id).is_some_and(|(g, _)| *g == this) => {
                            running.remove(&id);
                            frames.push(complete_frame(&id));
                        }
                        None => {}
                    }
                }
                if !record_disclosures(&state, &ctx_cell, &disclosures, extra).await {
                    tracing::error!(request_id, "disclosure records not written; closing");
                    let _ = close(&mut sink, 1011, "internal error").await;
                    break;
                }
                let mut failed = false;
                for frame in frames {
                    if sink.feed(Message::Text(frame.into())).await.is_err() {
                        failed = true;
                        break;
                    }
                }
                if failed || sink.flush().await.is_err() {
                    break;
                }
            }
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => {
                    // Whatever else is ready goes out with it, in one flush.
                    let mut batch = vec![text];
                    let mut closing = None;
                    while batch.len() < COALESCE {
                        match futures::FutureExt::now_or_never(messages.next()) {
                            Some(Some(WsMessage::Text(t))) => batch.push(t),
                            Some(Some(WsMessage::Close(code, reason))) => {
                                closing = Some((code, reason));
                                break;
                            }
                            Some(None) | None => break,
                        }
                    }
                    // Disclosures these messages make are on the record before they are sent.
                    if !record_disclosures(&state, &ctx_cell, &disclosures, Vec::new()).await {
                        tracing::error!(request_id, "disclosure records not written; closing");
                        let _ = close(&mut sink, 1011, "internal error").await;
                        break;
                    }
                    let mut failed = false;
                    for text in batch {
                        if sink.feed(Message::Text(text.into())).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed || sink.flush().await.is_err() {
                        break;
                    }
                    if let Some((code, reason)) = closing {
                        let code = if auth_failed.load(Ordering::SeqCst) { 4403 } else { code };
                        let _ = close(&mut sink, code, &reason).await;
                        break;
                    }
                }
                Some(WsMessage::Close(code, reason)) => {
                    let code = if auth_failed.load(Ordering::SeqCst) { 4403 } else { code };
                    let _ = close(&mut sink, code, &reason).await;
                    break;
                }
                None => break,
            },
            changed = close_rx.changed() => {
                if changed.is_err() {
                    break;
                }
                let request = close_rx.borrow().clone();
                if let Some((code, reason)) = request {
                    // Ending a connection for an expired token or a lapsed agreement is on the
                    // record like any refusal.
                    let error_code = match code {
                        4401 => ErrorCode::Unauthenticated,
                        4403 => ErrorCode::Forbidden,
                        _ => ErrorCode::Internal,
                    };
                    let entry = RequestAudit::of(
                        ctx_cell
                            .get()
                            .map(|c| c.actor().entry())
                            .unwrap_or_else(|| AuditEntry::now("anonymous")),
                    )
                    .operation("subscription", Some("connection_close".into()))
                    .ended(Some(error_code), Duration::ZERO);
                    if let Err(e) = state.audit.record(entry).await {
                        tracing::error!(request_id, error = %e, "audit record for a closed connection not written");
                    }
                    let _ = close(&mut sink, code, &reason).await;
                    break;
                }
            }
            _ = async { shutting_down.wait_for(|closing| *closing).await.map(|_| ()) } => {
                let _ = close(&mut sink, 1001, "server shutting down").await;
                break;
            }
            _ = &mut init_deadline, if ctx_cell.get().is_none() => {
                let _ = close(&mut sink, 4408, "connection initialisation timeout").await;
                break;
            }
        }
    }
}

/// Writes the disclosures made by the messages about to be sent (those in the connection's log,
/// and `extra` from cohorts) under the connection's name. False when they could not be written.
async fn record_disclosures(
    state: &ApiState,
    ctx: &OnceLock<RequestCtx>,
    log: &DisclosureLog,
    extra: Vec<AuditDisclosure>,
) -> bool {
    let Some(ctx) = ctx.get() else {
        return true;
    };
    let mut entries = log.entries(ctx);
    if !extra.is_empty() {
        let actor = ctx.actor();
        entries.extend(extra.into_iter().map(|d| AuditEntry {
            disclosure: Some(d),
            ..actor.entry()
        }));
    }
    entries.is_empty() || state.audit.record_all(entries).await.is_ok()
}

/// A subscription's messages, tagged with its id and generation; `None` when it ends.
type Tagged = BoxStream<'static, (Arc<str>, u64, Option<MemberMessage>)>;

/// A client message, as far as this loop needs to know it.
enum ClientMessage {
    Subscribe {
        id: String,
        request: Box<GqlRequest>,
    },
    Complete {
        id: String,
    },
    /// Anything else, for async-graphql's handler (which also reports what does not parse).
    Other,
}

fn client_message(bytes: &[u8]) -> ClientMessage {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        id: Option<String>,
        payload: Option<serde_json::Value>,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) else {
        return ClientMessage::Other;
    };
    match (envelope.kind.as_str(), envelope.id) {
        ("subscribe", Some(id)) => match envelope.payload.map(serde_json::from_value) {
            Some(Ok(request)) => ClientMessage::Subscribe {
                id,
                request: Box::new(request),
            },
            _ => ClientMessage::Other,
        },
        ("complete", Some(id)) => ClientMessage::Complete { id },
        _ => ClientMessage::Other,
    }
}

/// `{"id":…,"type":"next","payload":…}` around a payload rendered once for its cohort.
fn next_frame(id: &str, payload: &str) -> String {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
    let mut frame = String::with_capacity(id.len() + payload.len() + 32);
    frame.push_str("{\"id\":");
    frame.push_str(&id);
    frame.push_str(",\"type\":\"next\",\"payload\":");
    frame.push_str(payload);
    frame.push('}');
    frame
}

fn complete_frame(id: &str) -> String {
    serde_json::json!({"id": id, "type": "complete"}).to_string()
}

async fn close<S>(sink: &mut S, code: u16, reason: &str) -> Result<(), axum::Error>
where
    S: futures::Sink<Message, Error = axum::Error> + Unpin,
{
    sink.send(Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    })))
    .await
}
