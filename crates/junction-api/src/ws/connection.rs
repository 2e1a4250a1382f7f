//! One WebSocket connection's loop: client frames in, subscription batches and async-graphql's
//! protocol messages out, each batch's disclosures on the record before it is sent.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::{
    WebSocket as GraphQLWebSocket, WebSocketProtocols as Protocols, WsMessage,
};
use axum::extract::ws::{Message, WebSocket};
use futures::stream::{AbortHandle, Abortable, BoxStream, SelectAll, SplitSink};
use futures::{SinkExt, StreamExt};
use junction_domain::{AuditDisclosure, AuditEntry};

use super::executor::AuditedExecutor;
use super::frames::{ClientMessage, client_message, close, complete_frame, next_frame};
use super::init::Init;
use super::{COALESCE, INBOX, INIT_TIMEOUT};
use crate::cohort::MemberMessage;
use crate::graphql::access::DisclosureLog;
use crate::graphql::subscription::ConnectionControl;
use crate::layer::ApiState;
use crate::{ErrorCode, RequestAudit, RequestCtx};

/// A subscription's messages, tagged with its id and generation; `None` when it ends.
type Tagged = BoxStream<'static, (Arc<str>, u64, Option<MemberMessage>)>;

/// Whether the loop goes on after a step.
enum Flow {
    Go,
    Stop,
}

/// What the loop keeps between steps.
struct Connection {
    state: Arc<ApiState>,
    sink: SplitSink<WebSocket, Message>,
    /// Client messages for async-graphql's protocol handler (all but subscriptions, which this
    /// loop serves through their cohorts).
    to_protocol: futures::channel::mpsc::Sender<Vec<u8>>,
    ctx: Arc<OnceLock<RequestCtx>>,
    disclosures: DisclosureLog,
    control: ConnectionControl,
    auth_failed: Arc<AtomicBool>,
    executor: AuditedExecutor,
    /// This connection's subscriptions, each tagged with its id and a generation (an id may be
    /// reused once its subscription is complete).
    subscriptions: SelectAll<Tagged>,
    running: HashMap<Arc<str>, (u64, AbortHandle)>,
    generation: u64,
    request_id: String,
}

pub(super) async fn serve(
    state: Arc<ApiState>,
    socket: WebSocket,
    request_id: String,
    client_addr: Option<String>,
) {
    let (sink, mut incoming) = socket.split();
    let (to_protocol, input) = futures::channel::mpsc::channel::<Vec<u8>>(INBOX);
    let ctx: Arc<OnceLock<RequestCtx>> = Arc::new(OnceLock::new());
    let (control, mut close_rx) = ConnectionControl::new();
    let init = Init {
        state: state.clone(),
        ctx: ctx.clone(),
        disclosures: DisclosureLog::default(),
        control,
        auth_failed: Arc::new(AtomicBool::new(false)),
        request_id: request_id.clone(),
        client_addr,
    };
    let executor = AuditedExecutor {
        schema: state.schema.clone(),
        audit: state.audit.clone(),
        ctx: ctx.clone(),
        max_fields: state.limits.max_complexity,
    };
    let mut messages = GraphQLWebSocket::new(executor.clone(), input, Protocols::GraphQLWS)
        .on_connection_init({
            let init = init.clone();
            move |payload| init.clone().accept(payload)
        })
        // No protocol keepalive timer: async-graphql's runs on a separate reactor and wakes it on
        // every poll, which costs a system call per message at scale. The init deadline below
        // and TCP keep-alive cover what it would.
        .keepalive_timeout(None);
    let mut conn = Connection {
        state: state.clone(),
        sink,
        to_protocol,
        ctx,
        disclosures: init.disclosures,
        control: init.control,
        auth_failed: init.auth_failed,
        executor,
        subscriptions: SelectAll::new(),
        running: HashMap::new(),
        generation: 0,
        request_id,
    };
    let mut shutting_down = state.closing.clone();
    let init_deadline = tokio::time::sleep(INIT_TIMEOUT);
    tokio::pin!(init_deadline);
    loop {
        let flow = tokio::select! {
            frame = incoming.next() => match frame {
                Some(Ok(Message::Text(t))) => conn.client_frame(t.as_bytes().to_vec()).await,
                Some(Ok(Message::Binary(b))) => conn.client_frame(b.to_vec()).await,
                Some(Ok(_)) => Flow::Go,
                Some(Err(_)) | None => Flow::Stop,
            },
            Some(first) = conn.subscriptions.next(), if !conn.subscriptions.is_empty() => {
                conn.subscription_batch(first).await
            }
            message = messages.next() => match message {
                Some(WsMessage::Text(text)) => conn.protocol_batch(text, &mut messages).await,
                Some(WsMessage::Close(code, reason)) => conn.protocol_close(code, &reason).await,
                None => Flow::Stop,
            },
            changed = close_rx.changed() => {
                let request = close_rx.borrow().clone();
                match (changed, request) {
                    (Err(_), _) => Flow::Stop,
                    (Ok(()), Some((code, reason))) => conn.closed_by_server(code, &reason).await,
                    (Ok(()), None) => Flow::Go,
                }
            }
            _ = async { shutting_down.wait_for(|closing| *closing).await.map(|_| ()) } => {
                conn.close(1001, "server shutting down").await
            }
            _ = &mut init_deadline, if conn.ctx.get().is_none() => {
                conn.close(4408, "connection initialisation timeout").await
            }
        };
        if let Flow::Stop = flow {
            break;
        }
    }
}

impl Connection {
    /// Sends a close frame; the loop ends after it.
    async fn close(&mut self, code: u16, reason: &str) -> Flow {
        let _ = close(&mut self.sink, code, reason).await;
        Flow::Stop
    }

    /// Passes a message to async-graphql's handler, or closes if the client outruns it.
    async fn pass_on(&mut self, bytes: Vec<u8>) -> Flow {
        if self.to_protocol.try_send(bytes).is_err() {
            return self.close(4429, "too many messages").await;
        }
        Flow::Go
    }

    /// One frame from the client: subscriptions start and complete here, all else goes to
    /// async-graphql's handler.
    async fn client_frame(&mut self, bytes: Vec<u8>) -> Flow {
        match client_message(&bytes) {
            ClientMessage::Subscribe { id, request } if self.ctx.get().is_some() => {
                if self.running.contains_key(id.as_str()) {
                    let reason = format!("Subscriber for {id} already exists");
                    return self.close(4409, &reason).await;
                }
                let Some(ctx) = self.ctx.get().cloned() else {
                    return Flow::Go;
                };
                let mut session = Data::default();
                session.insert(ctx.clone());
                session.insert(self.disclosures.clone());
                session.insert(self.control.clone());
                let stream = crate::cohort::subscribe(
                    &self.state.cohorts,
                    &self.state.schema,
                    self.executor.clone(),
                    &self.state.store,
                    *request,
                    &ctx,
                    Arc::new(session),
                    self.control.clone(),
                );
                match stream {
                    Some(stream) => {
                        self.start(id.into(), stream);
                        Flow::Go
                    }
                    // Not a subscription: async-graphql's handler runs it.
                    None => self.pass_on(bytes).await,
                }
            }
            ClientMessage::Complete { id } if self.running.contains_key(id.as_str()) => {
                if let Some((_, handle)) = self.running.remove(id.as_str()) {
                    handle.abort();
                }
                Flow::Go
            }
            _ => self.pass_on(bytes).await,
        }
    }

    /// Adds a started subscription to the connection under a new generation of its id.
    fn start(&mut self, id: Arc<str>, stream: BoxStream<'static, MemberMessage>) {
        self.generation += 1;
        let this = self.generation;
        let (handle, registration) = AbortHandle::new_pair();
        let (tag, end) = (id.clone(), id.clone());
        let tagged = Abortable::new(stream, registration)
            .map(move |m| (tag.clone(), this, Some(m)))
            .chain(futures::stream::once(async move { (end, this, None) }));
        self.running.insert(id, (this, handle));
        self.subscriptions.push(tagged.boxed());
    }

    /// Sends a subscription message and whatever else is ready with it, in one flush.
    async fn subscription_batch(&mut self, first: (Arc<str>, u64, Option<MemberMessage>)) -> Flow {
        let mut batch = vec![first];
        while batch.len() < COALESCE {
            match futures::FutureExt::now_or_never(self.subscriptions.next()) {
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
                None if self.running.get(&id).is_some_and(|(g, _)| *g == this) => {
                    self.running.remove(&id);
                    frames.push(complete_frame(&id));
                }
                None => {}
            }
        }
        self.send(extra, frames).await
    }

    /// Sends async-graphql's message and whatever else it has ready, in one flush; a close it
    /// asks for goes out after them.
    async fn protocol_batch<S>(&mut self, text: String, messages: &mut S) -> Flow
    where
        S: futures::Stream<Item = WsMessage> + Unpin,
    {
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
        if let Flow::Stop = self.send(Vec::new(), batch).await {
            return Flow::Stop;
        }
        match closing {
            Some((code, reason)) => self.protocol_close(code, &reason).await,
            None => Flow::Go,
        }
    }

    /// async-graphql's handler closes the connection; a refused token closes with 4403.
    async fn protocol_close(&mut self, code: u16, reason: &str) -> Flow {
        let code = if self.auth_failed.load(Ordering::SeqCst) {
            4403
        } else {
            code
        };
        self.close(code, reason).await
    }

    /// Writes the disclosures these frames make, then the frames, in one flush; closes with
    /// 1011 if the disclosures could not be recorded.
    async fn send(&mut self, extra: Vec<AuditDisclosure>, frames: Vec<String>) -> Flow {
        if !self.record_disclosures(extra).await {
            tracing::error!(
                request_id = self.request_id,
                "disclosure records not written; closing"
            );
            return self.close(1011, "internal error").await;
        }
        for frame in frames {
            if self.sink.feed(Message::Text(frame.into())).await.is_err() {
                return Flow::Stop;
            }
        }
        if self.sink.flush().await.is_err() {
            return Flow::Stop;
        }
        Flow::Go
    }

    /// Writes the disclosures made by the messages about to be sent (those in the connection's
    /// log, and `extra` from cohorts) under the connection's name. False when they could not be
    /// written.
    async fn record_disclosures(&mut self, extra: Vec<AuditDisclosure>) -> bool {
        let Some(ctx) = self.ctx.get() else {
            return true;
        };
        let mut entries = self.disclosures.entries(ctx);
        if !extra.is_empty() {
            let actor = ctx.actor();
            entries.extend(extra.into_iter().map(|d| AuditEntry {
                disclosure: Some(d),
                ..actor.entry()
            }));
        }
        entries.is_empty() || self.state.audit.record_all(entries).await.is_ok()
    }

    /// The server ends the connection (an expired or revoked token, a lapsed agreement), on
    /// the record like any refusal.
    async fn closed_by_server(&mut self, code: u16, reason: &str) -> Flow {
        let error_code = match code {
            4401 => ErrorCode::Unauthenticated,
            4403 => ErrorCode::Forbidden,
            _ => ErrorCode::Internal,
        };
        let entry = RequestAudit::of(
            self.ctx
                .get()
                .map(|c| c.actor().entry())
                .unwrap_or_else(|| AuditEntry::now("anonymous")),
        )
        .operation("subscription", Some("connection_close".into()))
        .ended(Some(error_code), Duration::ZERO);
        if let Err(e) = self.state.audit.record(entry).await {
            tracing::error!(request_id = self.request_id, error = %e, "audit record for a closed connection not written");
        }
        self.close(code, reason).await
    }
}
