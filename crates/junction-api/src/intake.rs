//! Intake: the one way a case enters Junction, whichever surface it arrives on.
//!
//! A case is validated, routed and its deliveries planned here, by the domain's rules; the
//! store commits it together with its deliveries; then whatever runs the deliveries is woken. No outbound call happens here: a back-end that is down never makes
//! intake slow or fail.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{SubsecRound, Utc};
use junction_domain::{Actor, Case, NewCase, RoutingTable, ValidationErrors, delivery};
use junction_store::cases::{Arrival, Created, Planned};
use junction_store::{Store, StoreError, cases, catalogue};

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
    ///
    /// The decisions are the domain's, taken here: the case is validated against its type,
    /// routed by the jurisdiction's rules, and its deliveries planned (`delivery::plan`: the
    /// route's connector, the email fallback, copies, and a delivery nothing can carry created
    /// dead). The store then persists what was decided in one transaction.
    pub async fn create(
        &self,
        actor: &Actor,
        jurisdiction_id: &str,
        new: NewCase,
        arrival: Arrival<'_>,
    ) -> Result<Created, StoreError> {
        if let Some(key) = arrival.idempotency_key
            && let Some(case) = cases::by_idempotency_key(&self.store, &actor.subject, key).await?
        {
            return Ok(Created {
                case,
                replayed: true,
            });
        }
        let Some(case_type) =
            catalogue::case_type(&self.store, jurisdiction_id, &new.case_type_code).await?
        else {
            let mut errors = ValidationErrors::default();
            errors.push(
                "caseType",
                format!(
                    "`{}` is not a case type of `{jurisdiction_id}`",
                    new.case_type_code
                ),
            );
            return Err(errors.into());
        };
        let new = new.validate(&case_type)?;
        let empty = RoutingTable::default();
        let table = self.routing.get(jurisdiction_id).unwrap_or(&empty);
        let mut case = Case::open(
            uuid::Uuid::now_v7().to_string(),
            String::new(),
            jurisdiction_id,
            &case_type.agency_id,
            NewCase {
                case_type_code: case_type.code.clone(),
                ..new
            },
            &actor.subject,
            Utc::now().trunc_subsecs(6),
        );
        let route = table.route(&case, &case_type.agency_id);
        let agency_email = catalogue::agency(&self.store, &route.agency)
            .await?
            .and_then(|a| a.email);
        let deliveries = delivery::plan(&route, &table.methods, agency_email.as_deref());
        case.agency_id = route.agency.clone();
        case.route = Some(route);
        let planned = Planned {
            case,
            case_type: &case_type,
            deliveries,
            share_rules: &table.share_rules,
            email_connector: table.methods.email_connector.as_deref(),
        };
        let created = cases::create(&self.store, actor, planned, arrival).await?;
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
