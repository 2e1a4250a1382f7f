//! Cohorts: subscriptions that would receive the same messages share one execution.
//!
//! What a subscription sends depends on its document, its variables (less `after`), the
//! caller's agency and roles, and the purpose stated at connection; the caller's subject only
//! goes into the audit log. Subscriptions alike in all of these form a cohort. The cohort runs
//! the operation once, live, renders each message once, and broadcasts the text; each member
//! adds its own `id` and sends it. A thousand police officers watching the same feed cost one
//! redaction and one serialisation per event, not a thousand (ADR 0009).
//!
//! A member first replays on its own, from its `after` up to the feed position read just after
//! it joined the cohort's broadcast, then takes the cohort's messages past that position. So a
//! resumed subscription keeps its promise of no gap and no duplicate, and a member that falls
//! behind the broadcast does the same again from the last event it passed on. Each member's own
//! replay is a full execution with the member's own identity: its guard, purpose and access
//! checks run, and its operation is audited, exactly as before cohorts.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use async_graphql::parser::types::{DocumentOperations, Selection};
use async_graphql::{Data, Executor, Request as GqlRequest, Response as GqlResponse, Value};
use futures::StreamExt;
use futures::stream::BoxStream;
use junction_domain::{AuditDisclosure, Role};
use junction_store::Store;
use junction_store::sharing;
use tokio::sync::broadcast;

use crate::RequestCtx;
use crate::graphql::JunctionSchema;
use crate::graphql::access::DisclosureLog;
use crate::graphql::subscription::{ConnectionControl, FeedMode};

/// Rendered messages a cohort keeps for members that are briefly behind; one further behind
/// catches up from the database.
const CAPACITY: usize = 1_024;

/// What a cohort broadcasts.
#[derive(Debug)]
pub enum Rendered {
    /// One message: the event's feed position, the response as JSON, and the disclosures it
    /// makes (each member records them under its own name before sending).
    Next {
        seq: i64,
        payload: Arc<str>,
        disclosures: Arc<[AuditDisclosure]>,
    },
    /// The execution ended; with a close code and reason when access ended.
    End { close: Option<(u16, String)> },
}

/// A `next` payload for a member's connection to send, and the disclosures it makes beyond
/// those in the connection's own log. The member's stream ends when the subscription does.
#[derive(Debug)]
pub struct MemberMessage {
    pub payload: Arc<str>,
    pub disclosures: Arc<[AuditDisclosure]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CohortKey {
    query: String,
    operation_name: Option<String>,
    /// The variables as JSON, without the one that gives `after`.
    variables: String,
    agency: Option<String>,
    roles: Vec<Role>,
    purpose: Option<String>,
}

/// This process's cohorts.
#[derive(Clone, Default)]
pub struct Cohorts(Arc<Mutex<HashMap<CohortKey, Weak<Cohort>>>>);

struct Cohort {
    key: CohortKey,
    tx: broadcast::Sender<Arc<Rendered>>,
    task: tokio::task::JoinHandle<()>,
    registry: Weak<Mutex<HashMap<CohortKey, Weak<Cohort>>>>,
}

impl Drop for Cohort {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(registry) = self.registry.upgrade()
            && let Ok(mut map) = registry.lock()
            && map.get(&self.key).is_some_and(|w| w.strong_count() == 0)
        {
            map.remove(&self.key);
        }
    }
}

impl Cohorts {
    /// The running cohort for `key` and a receiver of its messages, starting one (live from
    /// `from`) if there is none.
    fn join(
        &self,
        key: CohortKey,
        schema: &JunctionSchema,
        request: &GqlRequest,
        ctx: &RequestCtx,
        from: i64,
    ) -> (Arc<Cohort>, broadcast::Receiver<Arc<Rendered>>) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // A cohort whose execution ended is replaced; it is dropped after the lock is released,
        // since dropping a cohort takes the lock.
        let mut stale = None;
        if let Some(cohort) = map.get(&key).and_then(Weak::upgrade) {
            if !cohort.task.is_finished() {
                drop(map);
                let rx = cohort.tx.subscribe();
                return (cohort, rx);
            }
            stale = Some(cohort);
        }
        let (tx, rx) = broadcast::channel(CAPACITY);
        let task = tokio::spawn(lead(schema.clone(), request, ctx, from, tx.clone()));
        let cohort = Arc::new(Cohort {
            key: key.clone(),
            tx,
            task,
            registry: Arc::downgrade(&self.0),
        });
        map.insert(key, Arc::downgrade(&cohort));
        drop(map);
        drop(stale);
        (cohort, rx)
    }
}

/// Runs a cohort's one execution, live from `from`, broadcasting each rendered message.
fn lead(
    schema: JunctionSchema,
    request: &GqlRequest,
    ctx: &RequestCtx,
    from: i64,
    tx: broadcast::Sender<Arc<Rendered>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let positions = Arc::new(Mutex::new(VecDeque::new()));
    let log = DisclosureLog::default();
    let (control, close_rx) = ConnectionControl::new();
    let mut session = Data::default();
    session.insert(RequestCtx {
        request_id: format!("cohort:{}", ctx.request_id),
        ..ctx.clone()
    });
    session.insert(log.clone());
    session.insert(control);
    session.insert(FeedMode::Live {
        from,
        positions: positions.clone(),
    });
    let request = copy_request(request);
    async move {
        let mut stream = schema.execute_stream_with_session_data(request, Arc::new(session));
        while let Some(response) = stream.next().await {
            let seq = positions.lock().ok().and_then(|mut p| p.pop_front());
            // A response with no event behind it is a refusal or failure: the cohort ends.
            let Some(seq) = seq else { break };
            let payload: Arc<str> = match serde_json::to_string(&response) {
                Ok(text) => text.into(),
                Err(e) => {
                    tracing::error!(error = %e, "subscription message not rendered");
                    break;
                }
            };
            // No receivers is fine: the last member may be leaving.
            let _ = tx.send(Arc::new(Rendered::Next {
                seq,
                payload,
                disclosures: log.drain().into(),
            }));
        }
        let close = close_rx.borrow().clone();
        let _ = tx.send(Arc::new(Rendered::End { close }));
    }
}

fn copy_request(request: &GqlRequest) -> GqlRequest {
    let mut copy = GqlRequest::new(request.query.clone()).variables(request.variables.clone());
    if let Some(name) = &request.operation_name {
        copy = copy.operation_name(name.clone());
    }
    copy
}

/// The cohort a subscription request belongs to, or `None` when it is not a subscription (or
/// does not parse: the ordinary path reports that).
fn cohort_key(request: &GqlRequest, ctx: &RequestCtx) -> Option<CohortKey> {
    let doc = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&doc.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    if operation.node.ty != async_graphql::parser::types::OperationType::Subscription {
        return None;
    }
    // The variable that carries `after` does not separate cohorts: the cohort runs live.
    let mut after_variable = None;
    for selection in &operation.node.selection_set.node.items {
        if let Selection::Field(field) = &selection.node {
            for (name, value) in &field.node.arguments {
                // A variable prints as `$name`.
                let written = value.node.to_string();
                if name.node.as_str() == "after"
                    && let Some(var) = written.strip_prefix('$')
                {
                    after_variable = Some(var.to_string());
                }
            }
        }
    }
    let mut variables = request.variables.clone();
    if let Some(name) = after_variable {
        variables.remove(&async_graphql::Name::new(name));
    }
    let mut roles = ctx.principal.roles.clone();
    roles.sort();
    roles.dedup();
    Some(CohortKey {
        query: request.query.clone(),
        operation_name: request.operation_name.clone(),
        variables: serde_json::to_string(&variables).unwrap_or_default(),
        agency: ctx.principal.agency.clone(),
        roles,
        purpose: ctx.purpose.clone(),
    })
}

/// A subscription served through its cohort: this member's own replay, then the cohort's
/// messages. `None` when the request is not a subscription.
#[allow(clippy::too_many_arguments)]
pub fn subscribe(
    cohorts: &Cohorts,
    schema: &JunctionSchema,
    executor: impl Executor,
    store: &Store,
    request: GqlRequest,
    ctx: &RequestCtx,
    session: Arc<Data>,
    control: ConnectionControl,
) -> Option<BoxStream<'static, MemberMessage>> {
    let key = cohort_key(&request, ctx)?;
    let member = Member {
        cohorts: cohorts.clone(),
        schema: schema.clone(),
        executor: Some(Box::new(move |r, s| executor.execute_stream(r, s))),
        store: store.clone(),
        request,
        ctx: ctx.clone(),
        key,
        session,
        control,
        cohort: None,
        rx: None,
        last: None,
        phase: Phase::Join,
    };
    Some(
        futures::stream::unfold(
            member,
            |mut m| async move { m.next().await.map(|msg| (msg, m)) },
        )
        .boxed(),
    )
}

type StartStream =
    Box<dyn FnOnce(GqlRequest, Option<Arc<Data>>) -> BoxStream<'static, GqlResponse> + Send>;

enum Phase {
    /// Join the cohort (or rejoin it after falling behind) and start this member's replay.
    Join,
    /// This member's own replay, up to the position read on joining.
    Replay {
        stream: BoxStream<'static, GqlResponse>,
        until: i64,
        first: bool,
    },
    /// The cohort's messages.
    Live,
    Done,
}

struct Member {
    cohorts: Cohorts,
    schema: JunctionSchema,
    /// Runs the first replay, which audits the operation; later replays run on the schema.
    executor: Option<StartStream>,
    store: Store,
    request: GqlRequest,
    ctx: RequestCtx,
    key: CohortKey,
    session: Arc<Data>,
    control: ConnectionControl,
    cohort: Option<Arc<Cohort>>,
    rx: Option<broadcast::Receiver<Arc<Rendered>>>,
    /// The last feed position passed on; `None` before the first replay.
    last: Option<i64>,
    phase: Phase,
}

impl Member {
    async fn next(&mut self) -> Option<MemberMessage> {
        loop {
            match &mut self.phase {
                Phase::Done => return None,
                Phase::Join => {
                    if let Err(e) = self.join().await {
                        return self.fail(e);
                    }
                }
                Phase::Replay {
                    stream,
                    until,
                    first,
                } => match stream.next().await {
                    Some(response) => {
                        // The first response of the first replay, with no data, is a refusal
                        // (a guard, a purpose, a bad `after`): pass it on and stop.
                        let refused = std::mem::take(first)
                            && response.data == Value::Null
                            && !response.errors.is_empty();
                        if refused {
                            self.phase = Phase::Done;
                            self.cohort = None;
                            self.rx = None;
                        }
                        return match serde_json::to_string(&response) {
                            Ok(text) => Some(MemberMessage {
                                payload: text.into(),
                                disclosures: Arc::from([]),
                            }),
                            Err(e) => self.fail(e.to_string()),
                        };
                    }
                    None => {
                        let until = *until;
                        self.last = Some(self.last.map_or(until, |l| l.max(until)));
                        self.phase = Phase::Live;
                    }
                },
                Phase::Live => {
                    let Some(rx) = self.rx.as_mut() else {
                        self.phase = Phase::Done;
                        continue;
                    };
                    match rx.recv().await {
                        Ok(rendered) => match &*rendered {
                            Rendered::Next {
                                seq,
                                payload,
                                disclosures,
                            } => {
                                if self.last.is_some_and(|l| *seq <= l) {
                                    continue;
                                }
                                self.last = Some(*seq);
                                return Some(MemberMessage {
                                    payload: payload.clone(),
                                    disclosures: disclosures.clone(),
                                });
                            }
                            Rendered::End { close } => {
                                if let Some((code, reason)) = close {
                                    self.control.close(*code, reason.clone());
                                }
                                self.phase = Phase::Done;
                            }
                        },
                        // Behind the broadcast: catch up from the database, then go on.
                        Err(broadcast::error::RecvError::Lagged(_)) => self.phase = Phase::Join,
                        Err(broadcast::error::RecvError::Closed) => self.phase = Phase::Done,
                    }
                }
            }
        }
    }

    /// Joins the cohort (or takes a new receiver after falling behind), reads the feed position
    /// after that, and starts this member's replay up to it.
    async fn join(&mut self) -> Result<(), String> {
        match &self.cohort {
            None => {
                // A cohort started now runs live from the current head.
                let from = sharing::feed_head(&self.store)
                    .await
                    .map_err(|e| e.to_string())?;
                let (cohort, rx) = self.cohorts.join(
                    self.key.clone(),
                    &self.schema,
                    &self.request,
                    &self.ctx,
                    from,
                );
                self.cohort = Some(cohort);
                self.rx = Some(rx);
            }
            Some(cohort) => self.rx = Some(cohort.tx.subscribe()),
        }
        // Read after joining: everything past it reaches the receiver.
        let until = sharing::feed_head(&self.store)
            .await
            .map_err(|e| e.to_string())?;
        let request = copy_request(&self.request).data(FeedMode::Replay {
            from: self.last,
            until,
        });
        let first = self.executor.is_some();
        let stream = match self.executor.take() {
            Some(start) => start(request, Some(self.session.clone())),
            None => self
                .schema
                .execute_stream_with_session_data(request, self.session.clone()),
        };
        self.phase = Phase::Replay {
            stream,
            until,
            first,
        };
        Ok(())
    }

    fn fail(&mut self, error: String) -> Option<MemberMessage> {
        tracing::error!(
            request_id = self.ctx.request_id,
            error,
            "subscription failed"
        );
        self.phase = Phase::Done;
        self.control.close(1011, "internal error");
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use junction_domain::Principal;

    fn ctx(subject: &str, agency: &str, roles: &[Role], purpose: &str) -> RequestCtx {
        RequestCtx {
            principal: Principal {
                subject: subject.into(),
                agency: Some(agency.into()),
                roles: roles.to_vec(),
            },
            request_id: format!("req-{subject}"),
            client_addr: None,
            purpose: Some(purpose.into()),
            channel: "websocket",
        }
    }

    fn request(after: Option<&str>) -> GqlRequest {
        GqlRequest::new("subscription($after: ID, $p: String) { sharedCaseEvents(after: $after, purpose: $p) { id } }")
            .variables(async_graphql::Variables::from_json(
                serde_json::json!({"after": after, "p": "crime_prevention"}),
            ))
    }

    #[test]
    fn alike_subscriptions_share_a_key_whoever_asks_and_wherever_they_resume() {
        let police = |who| ctx(who, "police", &[Role::Partner], "crime_prevention");
        let a = cohort_key(&request(None), &police("a")).unwrap();
        let b = cohort_key(&request(Some("41")), &police("b")).unwrap();
        assert_eq!(a, b, "subject and `after` do not separate cohorts");
        let fire = cohort_key(
            &request(None),
            &ctx("a", "fire", &[Role::Partner], "crime_prevention"),
        )
        .unwrap();
        assert_ne!(a, fire, "another agency sees through other agreements");
        let purpose = cohort_key(
            &request(None),
            &ctx("a", "police", &[Role::Partner], "public_health"),
        )
        .unwrap();
        assert_ne!(
            a, purpose,
            "another purpose may be granted other agreements"
        );
        let roles = cohort_key(
            &request(None),
            &ctx(
                "a",
                "police",
                &[Role::Partner, Role::Officer],
                "crime_prevention",
            ),
        )
        .unwrap();
        assert_ne!(a, roles, "roles decide guards and access");
        let other_purpose_argument = GqlRequest::new(
            "subscription($after: ID, $p: String) { sharedCaseEvents(after: $after, purpose: $p) { id } }",
        )
        .variables(async_graphql::Variables::from_json(
            serde_json::json!({"p": "fire_safety"}),
        ));
        assert_ne!(
            a,
            cohort_key(&other_purpose_argument, &police("a")).unwrap(),
            "other variables are part of the key"
        );
    }

    #[test]
    fn queries_and_mutations_are_not_cohorts() {
        let police = ctx("a", "police", &[Role::Partner], "crime_prevention");
        assert!(cohort_key(&GqlRequest::new("{ me { subject } }"), &police).is_none());
        assert!(cohort_key(&GqlRequest::new("subscription {"), &police).is_none());
    }
}
