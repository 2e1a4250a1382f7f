//! Connector errors, each classed as worth retrying or not.

/// What went wrong talking to an external system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    /// The system may accept the same request later (timeouts, 5xx, connection refused).
    #[error("temporary failure: {0}")]
    Transient(String),
    /// The system refused the request and will refuse it again (4xx validation answers).
    #[error("permanent failure: {0}")]
    Permanent(String),
}

impl ConnectorError {
    pub fn is_retriable(&self) -> bool {
        matches!(self, ConnectorError::Transient(_))
    }
}
