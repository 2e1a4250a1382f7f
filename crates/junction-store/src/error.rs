//! What can go wrong in the store, in terms the API can map to its error codes.

use junction_domain::ValidationErrors;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// No such object, or none the caller may know of.
    #[error("{kind} `{id}` not found")]
    NotFound { kind: &'static str, id: String },
    /// The object changed since the caller saw it, or the change conflicts with its state.
    #[error("{0}")]
    Conflict(String),
    /// The input is invalid; each error names its field.
    #[error("{0}")]
    Invalid(ValidationErrors),
    /// Removing something still referenced would lose data.
    #[error("{0}")]
    InUse(String),
    /// The database failed; the detail is for logs, never for callers.
    #[error("database error: {0}")]
    Database(#[from] sea_orm::DbErr),
    /// Stored data could not be decoded; the detail is for logs, never for callers.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The audit writer has stopped, so nothing can be recorded.
    #[error("audit writer unavailable")]
    AuditUnavailable,
}

impl StoreError {
    pub(crate) fn corrupt(what: &str, err: impl std::fmt::Display) -> Self {
        StoreError::Corrupt(format!("{what}: {err}"))
    }
}

impl From<ValidationErrors> for StoreError {
    fn from(e: ValidationErrors) -> Self {
        StoreError::Invalid(e)
    }
}
