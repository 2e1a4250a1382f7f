//! The partner feed in this process: one pump reads newly committed fed events from the
//! database and broadcasts them, with their case and live shares, to every subscription here.
//!
//! The pump learns of new events from PostgreSQL `NOTIFY` (sent by the committing transaction,
//! in whichever Junction process it ran) or, on SQLite, by polling every few milliseconds
//! (see [`sharing::FeedWaiter`]). Subscriptions filter and redact what they receive; one that falls behind the
//! broadcast reads the gap back from the database, so nothing is skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use junction_domain::{Case, Share};
use junction_store::sharing::{self, FeedEntry};
use junction_store::{Store, StoreError};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// One fed event, with the case as it is now and the case's live shares.
#[derive(Debug)]
pub struct FeedItem {
    pub entry: FeedEntry,
    pub case: Case,
    pub shares: Vec<Share>,
}

/// This process's feed: subscribe to receive every fed event committed from now on.
#[derive(Clone, Debug)]
pub struct FeedHub {
    tx: broadcast::Sender<Arc<FeedItem>>,
}

/// Events buffered per subscriber before it must catch up from the database.
const CAPACITY: usize = 4_096;
/// Events read per database round trip.
const BATCH: u64 = 500;

impl FeedHub {
    /// Starts the pump. It runs until the process ends.
    pub fn start(store: Store) -> (FeedHub, JoinHandle<()>) {
        let (tx, _) = broadcast::channel(CAPACITY);
        let task = tokio::spawn(pump(store, tx.clone()));
        (FeedHub { tx }, task)
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<FeedItem>> {
        self.tx.subscribe()
    }

    /// How many subscriptions are listening in this process.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

async fn pump(store: Store, tx: broadcast::Sender<Arc<FeedItem>>) {
    let mut last = loop {
        match sharing::feed_head(&store).await {
            Ok(seq) => break seq,
            Err(e) => {
                tracing::warn!(error = %e, "feed head unreadable; retrying");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    };
    let mut waiter = sharing::FeedWaiter::new(&store).await;
    loop {
        match read_new(&store, last).await {
            Ok(items) => {
                for item in items {
                    last = item.entry.seq;
                    // No receivers is fine: nobody is subscribed in this process.
                    let _ = tx.send(Arc::new(item));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "feed read failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        }
        waiter.wait().await;
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
    let cases = sharing::cases_by_id(store, &ids).await?;
    let mut shares: BTreeMap<String, Vec<Share>> = sharing::live_shares(store, &ids).await?;
    Ok(entries
        .into_iter()
        .filter_map(|entry| {
            let case = cases.get(&entry.event.case_id)?.clone();
            let shares = shares
                .get_mut(&entry.event.case_id)
                .map(|s| s.clone())
                .unwrap_or_default();
            Some(FeedItem {
                entry,
                case,
                shares,
            })
        })
        .collect())
}
