//! Intake: the one way a case enters Junction, whichever surface it arrives on.
//!
//! A case is validated, routed and committed together with its deliveries; then whatever runs
//! the deliveries is woken. No outbound call happens here: a back-end that is down never makes
//! intake slow or fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use junction_domain::{Actor, Case, NewCase, RoutingTable};
use junction_store::cases::{Arrival, Created};
use junction_store::{Store, StoreError, cases};

/// Wakes the delivery workers after new deliveries are committed. The server hands the API
/// whatever fits its deployment (an in-process notifier, or nothing when workers poll).
pub trait DeliveryWaker: Send + Sync {
    fn wake(&self);
}

/// A waker for processes that run no workers: the workers elsewhere find the deliveries by
/// polling the database.
pub struct NoWaker;

impl DeliveryWaker for NoWaker {
    fn wake(&self) {}
}

/// Creates cases.
#[derive(Clone)]
pub struct Intake {
    store: Store,
    routing: Arc<BTreeMap<String, RoutingTable>>,
    waker: Arc<dyn DeliveryWaker>,
}

impl Intake {
    /// The email connector that carries email to agencies (`routing.email_connector`).
    pub fn email_connector(&self) -> Option<String> {
        self.routing
            .values()
            .find_map(|t| t.methods.email_connector.clone())
    }

    pub fn new(
        store: Store,
        routing: Arc<BTreeMap<String, RoutingTable>>,
        waker: Arc<dyn DeliveryWaker>,
    ) -> Intake {
        Intake {
            store,
            routing,
            waker,
        }
    }

    /// Validates, routes and stores `new` in `jurisdiction_id` with its deliveries.
    pub async fn create_case(
        &self,
        actor: &Actor,
        jurisdiction_id: &str,
        new: NewCase,
    ) -> Result<Case, StoreError> {
        let created = self
            .create(actor, jurisdiction_id, new, Arrival::default())
            .await?;
        Ok(created.case)
    }

    /// As [`Intake::create_case`], with what came with the case: its files (and those set
    /// aside as over a limit), and the client's idempotency key. A case the same client already
    /// sent under that key is answered with the case it made, and nothing is written or sent.
    pub async fn create(
        &self,
        actor: &Actor,
        jurisdiction_id: &str,
        new: NewCase,
        arrival: Arrival<'_>,
    ) -> Result<Created, StoreError> {
        let empty = RoutingTable::default();
        let table = self.routing.get(jurisdiction_id).unwrap_or(&empty);
        let created =
            cases::create_with_files(&self.store, actor, jurisdiction_id, new, table, arrival)
                .await?;
        if !created.replayed {
            self.waker.wake();
        }
        Ok(created)
    }

    /// Routes case `id` again (under `case_type` when its category changed) and sends it
    /// where the new route says.
    pub async fn reroute(
        &self,
        actor: &Actor,
        id: &str,
        case_type: Option<&str>,
    ) -> Result<Case, StoreError> {
        let Some(existing) = cases::get(&self.store, id).await? else {
            return Err(StoreError::NotFound {
                kind: "case",
                id: id.to_string(),
            });
        };
        let empty = RoutingTable::default();
        let table = self
            .routing
            .get(&existing.jurisdiction_id)
            .unwrap_or(&empty);
        let case = cases::reroute(&self.store, actor, &existing.id, case_type, table).await?;
        self.waker.wake();
        Ok(case)
    }

    /// Wakes the workers, e.g. after a retry or a resume.
    pub fn wake(&self) {
        self.waker.wake();
    }

    pub fn routing(&self) -> &BTreeMap<String, RoutingTable> {
        &self.routing
    }
}
