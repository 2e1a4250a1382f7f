//! The partner feed in this process: one pump reads newly committed fed events from the
//! database and broadcasts them, with their case and live shares, to every subscription here.
//!
//! The pump learns of new events from PostgreSQL `NOTIFY` (sent by the committing transaction,
//! in whichever Junction process it ran) or, on SQLite, by polling every 10 ms while events
//! keep coming and waiting for this process's next commit once they stop, with a one-second
//! poll behind both (see [`sharing::FeedWaiter`]). Subscriptions filter and
//! redact what they receive; one that falls behind the broadcast reads the gap back from the
//! database, so nothing is skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use junction_domain::{Agreement, Case, CaseType, Share};
use junction_store::sharing::{self, FeedEntry};
use junction_store::{Store, StoreError};
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// One fed event, with the case as it is now and the case's live shares.
#[derive(Debug)]
pub struct FeedItem {
    pub entry: FeedEntry,
    pub case: Arc<Case>,
    pub shares: Vec<Share>,
    /// The case's type, for field classifications.
    pub case_type: Option<Arc<CaseType>>,
}

/// This process's feed: subscribe to receive every fed event committed from now on. It also
/// keeps every agreement, re-read each second, so subscriptions re-check their access without a
/// database round trip each.
#[derive(Clone, Debug)]
pub struct FeedHub {
    tx: broadcast::Sender<Arc<FeedItem>>,
    agreements: watch::Receiver<Option<Arc<Vec<Agreement>>>>,
}

/// How often the agreements are re-read.
const AGREEMENTS_EVERY: Duration = Duration::from_secs(1);

/// Events buffered per subscriber before it must catch up from the database.
const CAPACITY: usize = 4_096;
/// Events read per database round trip.
const BATCH: u64 = 500;

impl FeedHub {
    /// Starts the pump. It runs until the process ends.
    pub fn start(store: Store) -> (FeedHub, JoinHandle<()>) {
        let (tx, _) = broadcast::channel(CAPACITY);
        let (agreements_tx, agreements) = watch::channel(None);
        let task = tokio::spawn(pump(store.clone(), tx.clone()));
        tokio::spawn(watch_agreements(store, agreements_tx));
        (FeedHub { tx, agreements }, task)
    }

    /// Every agreement, as last read (at most a second ago); `None` before the first read.
    pub fn agreements(&self) -> Option<Arc<Vec<Agreement>>> {
        self.agreements.borrow().clone()
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }
}

async fn pump(store: Store, tx: broadcast::Sender<Arc<FeedItem>>) {
    // Made before the head is read, so a commit in between still wakes the first wait.
    let mut waiter = sharing::FeedWaiter::new(&store).await;
    let mut last = loop {
        match sharing::feed_head(&store).await {
            Ok(seq) => break seq,
            Err(e) => {
                tracing::warn!(error = %e, "feed head unreadable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    loop {
        let busy = match read_new(&store, last).await {
            Ok(items) => {
                let busy = !items.is_empty();
                for item in items {
                    last = item.entry.seq;
                    // No receivers is fine: nobody is subscribed in this process.
                    let _ = tx.send(Arc::new(item));
                }
                busy
            }
            Err(e) => {
                tracing::warn!(error = %e, "feed read failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        waiter.wait(busy).await;
    }
}

async fn watch_agreements(store: Store, tx: watch::Sender<Option<Arc<Vec<Agreement>>>>) {
    loop {
        match sharing::agreements(&store).await {
            Ok(list) => {
                let list: Vec<Agreement> = list.into_iter().map(|s| s.agreement).collect();
                if tx.send(Some(Arc::new(list))).is_err() {
                    return;
                }
            }
            Err(e) => tracing::warn!(error = %e, "agreements unreadable; keeping the last copy"),
        }
        tokio::time::sleep(AGREEMENTS_EVERY).await;
    }
}

/// Every fed event after `after`, with its case and live shares.
async fn read_new(store: &Store, after: i64) -> Result<Vec<FeedItem>, StoreError> {
    let mut out = Vec::new();
    let mut last = after;
    loop {
        let entries = sharing::feed_after(store, last, BATCH, None).await?;
        let full = entries.len() as u64 == BATCH;
        if let Some(e) = entries.last() {
            last = e.seq;
        }
        out.extend(with_cases(store, entries).await?);
        if !full {
            return Ok(out);
        }
    }
}

/// Attaches each entry's case and live shares (one read each for the batch).
pub async fn with_cases(
    store: &Store,
    entries: Vec<FeedEntry>,
) -> Result<Vec<FeedItem>, StoreError> {
    let ids: Vec<String> = {
        let mut ids: Vec<String> = entries.iter().map(|e| e.event.case_id.clone()).collect();
        ids.sort();
        ids.dedup();
        ids
    };
    let cases: BTreeMap<String, Arc<Case>> = sharing::cases_by_id(store, &ids)
        .await?
        .into_iter()
        .map(|(id, c)| (id, Arc::new(c)))
        .collect();
    let shares: BTreeMap<String, Vec<Share>> = sharing::live_shares(store, &ids).await?;
    let mut types: BTreeMap<(String, String), Option<Arc<CaseType>>> = BTreeMap::new();
    for c in cases.values() {
        let key = (c.jurisdiction_id.clone(), c.case_type_code.clone());
        if let std::collections::btree_map::Entry::Vacant(slot) = types.entry(key) {
            let (jurisdiction, code) = slot.key();
            let t = junction_store::catalogue::case_type(store, jurisdiction, code)
                .await?
                .map(Arc::new);
            slot.insert(t);
        }
    }
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            let case = cases.get(&entry.event.case_id)?.clone();
            let shares = shares
                .get(&entry.event.case_id)
                .cloned()
                .unwrap_or_default();
            let case_type = types
                .get(&(case.jurisdiction_id.clone(), case.case_type_code.clone()))
                .cloned()
                .flatten();
            Some(FeedItem {
                entry,
                case,
                shares,
                case_type,
            })
        })
        .collect())
}
