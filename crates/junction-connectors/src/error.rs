//! Connector errors, each classed as worth retrying or not, and whether the request may have
//! reached the other side.

/// What went wrong talking to an external system.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ConnectorError {
    /// The system may accept the same request later (timeouts, 5xx, connection refused).
    pub retriable: bool,
    /// The request may have arrived even though no answer came back (a timeout after it was
    /// sent, a dropped connection): check before sending again.
    pub ambiguous: bool,
    pub message: String,
    /// The system's raw answer, for diagnosis.
    pub response: Option<String>,
}

impl ConnectorError {
    pub fn transient(message: impl Into<String>) -> Self {
        ConnectorError {
            retriable: true,
            ambiguous: false,
            message: message.into(),
            response: None,
        }
    }

    pub fn permanent(message: impl Into<String>) -> Self {
        ConnectorError {
            retriable: false,
            ambiguous: false,
            message: message.into(),
            response: None,
        }
    }

    pub fn ambiguous(message: impl Into<String>) -> Self {
        ConnectorError {
            retriable: true,
            ambiguous: true,
            message: message.into(),
            response: None,
        }
    }

    pub fn with_response(mut self, response: impl Into<String>) -> Self {
        self.response = Some(response.into());
        self
    }

    pub fn is_retriable(&self) -> bool {
        self.retriable
    }
}

/// Classifies a reqwest failure: a timeout once the request was on its way is ambiguous; a
/// refused or failed connection means nothing was sent.
pub(crate) fn from_reqwest(e: &reqwest::Error, what: &str) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::ambiguous(format!("{what}: no answer before the timeout"))
    } else if e.is_connect() {
        ConnectorError::transient(format!("{what}: could not connect: {}", root_cause(e)))
    } else if e.is_request() || e.is_body() {
        ConnectorError::ambiguous(format!("{what}: the connection failed: {}", root_cause(e)))
    } else {
        ConnectorError::transient(format!("{what}: {}", root_cause(e)))
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut current = e;
    while let Some(next) = current.source() {
        current = next;
    }
    current.to_string()
}
