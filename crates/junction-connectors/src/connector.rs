//! The base every connector kind implements (what it is, whether the other side is there, how
//! a failed call is treated), and the set of capabilities a built connector offers.

use std::sync::Arc;

use crate::capabilities::{
    DeliverUpdate, FetchRequests, FetchServices, LookUp, PollUpdates, ReadFeed,
};
use crate::{ConnectorError, ConnectorKind, Deliver};

/// Whether the other side is there and answering as it should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// It answered as it should: what was checked.
    Healthy(String),
    /// It did not: why, for an operator.
    Unhealthy(String),
}

impl Health {
    pub fn is_healthy(&self) -> bool {
        matches!(self, Health::Healthy(_))
    }
}

/// How a failed call is treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryClass {
    /// Nothing arrived and it may work later: try again on the retry schedule.
    Retry,
    /// The other side refused what it was sent: trying again cannot help.
    Stop,
    /// It may have arrived though no answer came: prove what happened before anything is
    /// sent again.
    Unknown,
}

impl RetryClass {
    /// The class an error's own flags give.
    pub fn of(error: &ConnectorError) -> RetryClass {
        if error.ambiguous {
            RetryClass::Unknown
        } else if error.retriable {
            RetryClass::Retry
        } else {
            RetryClass::Stop
        }
    }
}

/// What every connector is, whatever it can do.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// Which kind it is.
    fn kind(&self) -> ConnectorKind;

    /// Where it connects, for operators: an endpoint or a relay, never a secret.
    fn target(&self) -> String;

    /// Asks the other side whether it is there and answering, changing nothing there.
    async fn health_check(&self) -> Health;

    /// How a failed call is treated; by default as the error's own flags say.
    fn classify(&self, error: &ConnectorError) -> RetryClass {
        RetryClass::of(error)
    }
}

/// What a built connector can do: its base, and each capability its kind offers. A kind's
/// `build` fills in the ones it implements; the rest stay `None`.
#[derive(Clone)]
pub struct Capabilities {
    pub base: Arc<dyn Connector>,
    /// Deliver a case (Open311 `POST requests`, an email, a signed webhook).
    pub deliver_case: Option<Arc<dyn Deliver>>,
    /// Send a status change or comment on a case the other side already holds.
    pub deliver_update: Option<Arc<dyn DeliverUpdate>>,
    /// Read the updates the other side made in a window.
    pub poll_updates: Option<Arc<dyn PollUpdates>>,
    /// Read the cases the other side holds in a window, for import.
    pub fetch_requests: Option<Arc<dyn FetchRequests>>,
    /// Read the other side's categories.
    pub fetch_services: Option<Arc<dyn FetchServices>>,
    /// Read the files of a regular export (a CSV feed).
    pub read_feed: Option<Arc<dyn ReadFeed>>,
    /// Answer a question while a person waits.
    pub look_up: Option<Arc<dyn LookUp>>,
}

impl Capabilities {
    /// A connector that offers nothing beyond its base yet.
    pub fn of(base: Arc<dyn Connector>) -> Capabilities {
        Capabilities {
            base,
            deliver_case: None,
            deliver_update: None,
            poll_updates: None,
            fetch_requests: None,
            fetch_services: None,
            read_feed: None,
            look_up: None,
        }
    }

    /// The names of the capabilities offered, for operators and docs.
    pub fn offered(&self) -> Vec<&'static str> {
        [
            ("deliver_case", self.deliver_case.is_some()),
            ("deliver_update", self.deliver_update.is_some()),
            ("poll_updates", self.poll_updates.is_some()),
            ("fetch_requests", self.fetch_requests.is_some()),
            ("fetch_services", self.fetch_services.is_some()),
            ("read_feed", self.read_feed.is_some()),
            ("look_up", self.look_up.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, offered)| offered.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_is_classed_by_whether_it_may_have_arrived_first() {
        assert_eq!(
            RetryClass::of(&ConnectorError::transient("x")),
            RetryClass::Retry
        );
        assert_eq!(
            RetryClass::of(&ConnectorError::permanent("x")),
            RetryClass::Stop
        );
        assert_eq!(
            RetryClass::of(&ConnectorError::ambiguous("x")),
            RetryClass::Unknown
        );
    }
}
