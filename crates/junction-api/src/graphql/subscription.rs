//! Subscriptions: a partner's live feed of what happens to the cases shared with it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_graphql::{Context, ID, Json, Object, Subscription};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use futures::stream::BoxStream;
use junction_domain::{Access, CaseEventKind as DomainKind, Share};
use junction_store::Store;
use junction_store::audit::AuditWriter;
use junction_store::sharing;
use std::collections::VecDeque;

use tokio::sync::{broadcast, watch};

use super::access::{SharingPolicy, case_access, lens_with, purpose};
use super::guard::Can;
use super::types::{Case, CaseEventKind};
use crate::RequestCtx;
use crate::error::{ApiError, ApiResult};
use crate::feed::{FeedHub, FeedItem, with_cases};
use junction_domain::Action;

pub struct SubscriptionRoot;

/// Set by a subscription once it has written its own audit record, so the WebSocket layer does
/// not write a second one.
#[derive(Debug, Clone, Default)]
pub struct OperationAudited(pub Arc<AtomicBool>);

/// Asks the WebSocket connection to close, with a close code and reason.
#[derive(Debug, Clone)]
pub struct ConnectionControl(pub Arc<watch::Sender<Option<(u16, String)>>>);

impl ConnectionControl {
    pub fn new() -> (ConnectionControl, watch::Receiver<Option<(u16, String)>>) {
        let (tx, rx) = watch::channel(None);
        (ConnectionControl(Arc::new(tx)), rx)
    }

    pub fn close(&self, code: u16, reason: impl Into<String>) {
        let _ = self.0.send(Some((code, reason.into())));
    }
}

/// How a subscription runs when the WebSocket layer shares one execution among a cohort of
/// subscribers (see `crate::cohort`). Without it, a subscription replays from `after` and then
/// runs live, on its own.
#[derive(Debug, Clone)]
pub enum FeedMode {
    /// Replay from `from` (else the `after` argument) up to and including `until`, then end.
    Replay { from: Option<i64>, until: i64 },
    /// Run live from `from`, whatever `after` says, and note the position of each event in
    /// `positions` as it is passed on, so the rendered message can be matched to it.
    Live {
        from: i64,
        positions: Arc<std::sync::Mutex<VecDeque<i64>>>,
    },
}

/// How often a subscription re-checks that its agreement still grants access.
const RECHECK: Duration = Duration::from_secs(1);

/// One event on a case shared with the subscriber.
pub struct SharedCaseEvent {
    seq: i64,
    kind: DomainKind,
    at: DateTime<Utc>,
    data: serde_json::Value,
    redacted: Vec<String>,
    case: Case,
}

#[Object]
impl SharedCaseEvent {
    /// The event's position in the feed: pass the last one seen as `after` when reconnecting.
    async fn id(&self) -> ID {
        ID(self.seq.to_string())
    }
    async fn kind(&self) -> CaseEventKind {
        self.kind.into()
    }
    async fn at(&self) -> DateTime<Utc> {
        self.at
    }
    /// Kind-specific detail, redacted like the case.
    async fn data(&self) -> Json<serde_json::Value> {
        Json(self.data.clone())
    }
    /// What the agreement hid from `data`.
    async fn redacted(&self) -> &[String] {
        &self.redacted
    }
    /// The case as it is now, as the agreement shows it.
    async fn case(&self) -> &Case {
        &self.case
    }
}

#[Subscription]
impl SubscriptionRoot {
    /// New shares, status changes, notes and updates on the cases shared with the caller's
    /// agency, redacted as queries are. Council staff receive every case's events in full.
    /// With `after` (the last event id seen), everything since is replayed first, with no gap
    /// and no duplicate. The connection closes when the token expires or the agreement stops
    /// granting access.
    #[graphql(guard = "Can(Action::ReadCases)")]
    async fn shared_case_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(
            name = "purpose",
            desc = "why a partner asks; or `purpose` in the connection's init payload"
        )]
        purpose_arg: Option<String>,
        #[graphql(desc = "replay from after this event id")] after: Option<ID>,
    ) -> Result<BoxStream<'static, SharedCaseEvent>, ApiError> {
        let store = ctx.data_unchecked::<Store>().clone();
        let hub = ctx.data_unchecked::<FeedHub>().clone();
        let policy = ctx.data_unchecked::<SharingPolicy>().clone();
        let request = ctx.data_unchecked::<RequestCtx>().clone();
        let stated = purpose(ctx, purpose_arg.as_deref())?;
        let access = case_access(ctx, stated.as_deref()).await?;
        let mode = ctx.data_opt::<FeedMode>().cloned();
        let start = match &mode {
            Some(FeedMode::Live { from, .. })
            | Some(FeedMode::Replay {
                from: Some(from), ..
            }) => *from,
            _ => match after {
                Some(id) => id.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                    ApiError::invalid("after", "is not an event id from this feed")
                })?,
                None => sharing::feed_head(&store).await?,
            },
        };
        // Subscribed before the replay, so nothing committed meanwhile is missed.
        let (live, until, positions) = match mode {
            Some(FeedMode::Replay { until, .. }) => (None, Some(until), None),
            Some(FeedMode::Live { positions, .. }) => {
                (Some(hub.subscribe()), None, Some(positions))
            }
            None => (Some(hub.subscribe()), None, None),
        };
        if let (Some(audit), Some(flag)) = (
            ctx.data_opt::<AuditWriter>(),
            ctx.data_opt::<OperationAudited>(),
        ) {
            let entry = crate::RequestAudit::of(request.actor().entry())
                .operation("subscription", Some("sharedCaseEvents".into()))
                .ended(None, std::time::Duration::ZERO);
            audit.record(entry).await?;
            flag.0.store(true, Ordering::SeqCst);
        }
        let control = ctx.data_opt::<ConnectionControl>().cloned();
        let feed = Feed {
            store,
            hub: hub.clone(),
            policy,
            request,
            purpose: stated,
            access,
            last: start,
            control,
            queue: VecDeque::new(),
            replayed: false,
            done: false,
            live,
            until,
            positions,
            recheck: tokio::time::interval_at(tokio::time::Instant::now() + RECHECK, RECHECK),
        };
        // The stream does its own work when polled: no task or channel per subscription.
        Ok(futures::stream::unfold(feed, |mut feed| async move {
            loop {
                if let Some(event) = feed.queue.pop_front() {
                    if let Some(positions) = &feed.positions
                        && let Ok(mut p) = positions.lock()
                    {
                        p.push_back(event.seq);
                    }
                    return Some((event, feed));
                }
                if feed.done {
                    return None;
                }
                if let Err(e) = feed.step().await {
                    tracing::error!(request_id = feed.request.request_id, error = ?e.message(), "subscription failed");
                    if let Some(c) = &feed.control {
                        c.close(1011, "internal error");
                    }
                    return None;
                }
            }
        })
        .boxed())
    }
}

/// One subscription's state.
struct Feed {
    store: Store,
    hub: FeedHub,
    policy: SharingPolicy,
    request: RequestCtx,
    purpose: Option<String>,
    access: Access,
    /// The last feed position passed on (or skipped).
    last: i64,
    control: Option<ConnectionControl>,
    /// Events ready to go.
    queue: VecDeque<SharedCaseEvent>,
    replayed: bool,
    done: bool,
    /// `None` when the subscription only replays.
    live: Option<broadcast::Receiver<Arc<FeedItem>>>,
    /// The last position a replay-only subscription passes on.
    until: Option<i64>,
    /// Where a cohort's execution notes each event's position.
    positions: Option<Arc<std::sync::Mutex<VecDeque<i64>>>>,
    recheck: tokio::time::Interval,
}

impl Feed {
    fn agency(&self) -> Option<&str> {
        match &self.access {
            Access::Full => None,
            Access::Partner(scope) => Some(&scope.agency),
        }
    }

    /// Does one unit of work: the replay, one live event, or a re-check of access.
    async fn step(&mut self) -> ApiResult<()> {
        if !self.replayed {
            self.replay().await?;
            self.replayed = true;
            return Ok(());
        }
        let Some(live) = self.live.as_mut() else {
            self.done = true;
            return Ok(());
        };
        let woke = tokio::select! {
            item = live.recv() => Some(item),
            _ = self.recheck.tick() => None,
        };
        match woke {
            Some(Ok(item)) => self.offer(&item),
            Some(Err(broadcast::error::RecvError::Lagged(_))) => self.replay().await?,
            Some(Err(broadcast::error::RecvError::Closed)) => self.done = true,
            None => self.recheck_access(),
        }
        Ok(())
    }

    /// Ends the subscription (and asks the connection to close) once the agreement no longer
    /// grants access.
    fn recheck_access(&mut self) {
        if matches!(self.access, Access::Full) {
            return;
        }
        let Some(agreements) = self.hub.agreements() else {
            return;
        };
        match junction_domain::sharing::access(
            &self.request.principal,
            self.purpose.as_deref(),
            &agreements,
            Utc::now(),
        ) {
            Ok(access) => self.access = access,
            Err(e) => {
                if let Some(c) = &self.control {
                    c.close(4403, format!("access ended: {e}"));
                }
                self.done = true;
            }
        }
    }

    /// Queues everything after `last` from the database.
    async fn replay(&mut self) -> ApiResult<()> {
        loop {
            let mut entries =
                sharing::feed_after(&self.store, self.last, 500, self.agency()).await?;
            let mut more = entries.len() == 500;
            if let Some(until) = self.until
                && entries.last().is_some_and(|e| e.seq > until)
            {
                entries.retain(|e| e.seq <= until);
                more = false;
            }
            let read_to = entries.last().map(|e| e.seq);
            for item in with_cases(&self.store, entries).await? {
                self.offer(&item);
            }
            if let Some(seq) = read_to {
                self.last = self.last.max(seq);
            }
            if !more {
                return Ok(());
            }
        }
    }

    /// Queues `item` if the subscriber may see it.
    fn offer(&mut self, item: &FeedItem) {
        if item.entry.seq <= self.last {
            return;
        }
        self.last = item.entry.seq;
        let event = &item.entry.event;
        // A partner's feed holds what happened from the moment a case was shared with it.
        let mut shares: Vec<Share> = item
            .shares
            .iter()
            .filter(|s| s.since <= item.entry.seq)
            .cloned()
            .collect();
        // A partner hears of its own share being withdrawn, though the share is no longer live.
        if event.kind == DomainKind::Unshared
            && let Some(agency) = self.agency()
            && event.data.get("agency").and_then(|a| a.as_str()) == Some(agency)
            && let Some(agreement) = event.data.get("agreement").and_then(|a| a.as_str())
        {
            shares.push(Share {
                case_id: item.case.id.clone(),
                agency_id: agency.to_string(),
                agreement_id: agreement.to_string(),
                since: 0,
            });
        }
        let Some(lens) = lens_with(
            &self.policy,
            &self.access,
            &item.case,
            &shares,
            item.case_type.clone(),
        ) else {
            return;
        };
        let Some((data, redacted)) = lens.event(event) else {
            return;
        };
        self.queue.push_back(SharedCaseEvent {
            seq: item.entry.seq,
            kind: event.kind,
            at: event.at,
            data,
            redacted,
            case: Case {
                case: item.case.clone(),
                lens,
            },
        });
    }
}
