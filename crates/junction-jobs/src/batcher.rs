//! Group commit for claims and outcomes: the workers' claims and settlements that arrive while
//! one transaction commits share the next one, so a burst of deliveries costs a few commits
//! rather than two each.

use std::time::Duration;

use junction_domain::DeliveryId;
use junction_store::deliveries::{self, Delivery, Settle};
use junction_store::{Store, StoreError};
use tokio::sync::{mpsc, oneshot};

type Reply<T> = oneshot::Sender<Result<T, String>>;
/// A claim request: delivery id and lease, and where to send the claimed delivery.
type ClaimRequest = ((DeliveryId, Duration), Reply<Option<Delivery>>);

/// The group-commit handle; claims and outcomes carry this process's id.
#[derive(Clone)]
pub(crate) struct Batcher {
    claims: mpsc::Sender<ClaimRequest>,
    settles: mpsc::Sender<(Settle, Reply<Delivery>)>,
}

/// Most claims or outcomes in one transaction.
const BATCH: usize = 256;

impl Batcher {
    /// Starts the two committing tasks for process `owner`.
    pub(crate) fn start(store: Store, owner: String) -> Batcher {
        let (claims, mut claim_rx) = mpsc::channel::<ClaimRequest>(4_096);
        let (settles, mut settle_rx) = mpsc::channel::<(Settle, Reply<Delivery>)>(4_096);
        let s = store.clone();
        let claimer = owner.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while claim_rx.recv_many(&mut batch, BATCH).await > 0 {
                let items: Vec<(DeliveryId, Duration)> = batch.iter().map(|(c, _)| *c).collect();
                match deliveries::claim_batch(&s, &claimer, &items).await {
                    Ok(results) => {
                        for ((_, reply), r) in batch.drain(..).zip(results) {
                            let _ = reply.send(Ok(r));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while settle_rx.recv_many(&mut batch, BATCH).await > 0 {
                let items: Vec<Settle> = batch.iter().map(|(o, _)| o.clone()).collect();
                match deliveries::settle_batch(&store, Some(&owner), &items).await {
                    Ok(results) => {
                        for ((_, reply), r) in batch.drain(..).zip(results) {
                            let _ = reply.send(r.map_err(|e| e.to_string()));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in batch.drain(..) {
                            let _ = reply.send(Err(e.to_string()));
                        }
                    }
                }
            }
        });
        Batcher { claims, settles }
    }

    pub(crate) async fn claim(
        &self,
        id: DeliveryId,
        lease: Duration,
    ) -> Result<Option<Delivery>, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.claims
            .send(((id, lease), tx))
            .await
            .map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(failed)
    }

    pub(crate) async fn settle(&self, outcome: Settle) -> Result<Delivery, StoreError> {
        let (tx, rx) = oneshot::channel();
        self.settles.send((outcome, tx)).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?.map_err(failed)
    }
}

fn gone() -> StoreError {
    StoreError::Conflict("the delivery batcher has stopped".into())
}

fn failed(e: String) -> StoreError {
    StoreError::Conflict(e)
}
