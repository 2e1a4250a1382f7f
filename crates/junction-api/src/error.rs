//! API errors and their closed set of codes.

use async_graphql::ErrorExtensions;
use junction_domain::{Denied, ValidationErrors};
use junction_store::StoreError;

/// Every error a caller can see carries exactly one of these in `extensions.code`.
///
/// | code | meaning | HTTP status when the whole request fails |
/// |---|---|---|
/// | `BAD_REQUEST` | malformed request, unparsable or invalid GraphQL document | 400 |
/// | `BAD_USER_INPUT` | an argument's value is invalid; `extensions.fields` names each field | 200 |
/// | `UNAUTHENTICATED` | no token, or a token that is not accepted | 401 |
/// | `FORBIDDEN` | the caller's roles do not allow the operation | 200 |
/// | `NOT_FOUND` | no such object, or none the caller may know of | 200 |
/// | `CONFLICT` | the object changed meanwhile, or the change contradicts its state | 200 |
/// | `LIMIT_EXCEEDED` | body size, query depth, complexity or page size over the limit | 413 or 200 |
/// | `INTERNAL` | Junction failed; the detail is in the log under the request id | 200 or 500 |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    BadUserInput,
    Unauthenticated,
    Forbidden,
    NotFound,
    Conflict,
    LimitExceeded,
    Internal,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 8] = [
        ErrorCode::BadRequest,
        ErrorCode::BadUserInput,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Conflict,
        ErrorCode::LimitExceeded,
        ErrorCode::Internal,
    ];

    pub fn as_str(self) -> &'static str {
        junction_domain::wire_name::wire_name(&self)
    }

    pub fn parse(s: &str) -> Option<Self> {
        junction_domain::wire_name::from_wire_name(s)
    }

    /// The audit record's outcome for a request that failed with this code: `rejected` when
    /// the request was at fault (malformed, over a limit, not allowed), `error` otherwise.
    pub fn outcome(self) -> &'static str {
        match self {
            ErrorCode::BadRequest
            | ErrorCode::BadUserInput
            | ErrorCode::LimitExceeded
            | ErrorCode::Forbidden
            | ErrorCode::Unauthenticated => "rejected",
            ErrorCode::NotFound | ErrorCode::Conflict | ErrorCode::Internal => "error",
        }
    }
}

/// An error raised by a resolver.
///
/// Deliberately not `Display`: async-graphql turns any `Display` error into a message as it
/// stands, so only this type's own conversion, which never shows internal detail, can reach
/// a caller.
#[derive(Debug, Clone)]
pub enum ApiError {
    Invalid(ValidationErrors),
    Forbidden(Denied),
    /// Refused for a reason other than role: a purpose not granted, a filter on a hidden field.
    Refused(String),
    NotFound {
        kind: &'static str,
        id: String,
    },
    Conflict(String),
    LimitExceeded(String),
    /// Logged with the request id; the caller sees only that something failed.
    Internal(String),
}

impl ApiError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Invalid(_) => ErrorCode::BadUserInput,
            ApiError::Forbidden(_) | ApiError::Refused(_) => ErrorCode::Forbidden,
            ApiError::NotFound { .. } => ErrorCode::NotFound,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::LimitExceeded(_) => ErrorCode::LimitExceeded,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }

    /// The message a caller sees.
    pub fn message(&self) -> String {
        match self {
            ApiError::Invalid(errors) => format!("invalid input: {errors}"),
            ApiError::Forbidden(denied) => denied.to_string(),
            ApiError::NotFound { kind, id } => format!("{kind} `{id}` not found"),
            ApiError::Conflict(m) | ApiError::LimitExceeded(m) | ApiError::Refused(m) => m.clone(),
            ApiError::Internal(_) => "internal error".into(),
        }
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        let mut errors = ValidationErrors::default();
        errors.push(field, reason);
        ApiError::Invalid(errors)
    }
}

impl From<Denied> for ApiError {
    fn from(d: Denied) -> Self {
        ApiError::Forbidden(d)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound { kind, id } => ApiError::NotFound { kind, id },
            StoreError::Conflict(m) | StoreError::InUse(m) => ApiError::Conflict(m),
            StoreError::Invalid(errors) => ApiError::Invalid(errors),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(e: ApiError) -> Self {
        if let ApiError::Internal(detail) = &e {
            tracing::error!(error = %detail, "internal error in resolver");
        }
        let code = e.code();
        let fields = match &e {
            ApiError::Invalid(errors) => Some(errors.0.clone()),
            _ => None,
        };
        async_graphql::Error::new(e.message()).extend_with(|_, ext| {
            ext.set("code", code.as_str());
            if let Some(fields) = &fields {
                let list: Vec<async_graphql::Value> = fields
                    .iter()
                    .map(|f| {
                        let mut m = async_graphql::indexmap::IndexMap::new();
                        m.insert(
                            async_graphql::Name::new("field"),
                            async_graphql::Value::from(f.field.clone()),
                        );
                        m.insert(
                            async_graphql::Name::new("reason"),
                            async_graphql::Value::from(f.reason.clone()),
                        );
                        async_graphql::Value::Object(m)
                    })
                    .collect();
                ext.set("fields", async_graphql::Value::List(list));
            }
        })
    }
}

/// Resolver results.
pub type ApiResult<T> = Result<T, ApiError>;

/// `error` with `code` in its extensions.
pub(crate) fn with_code(
    mut error: async_graphql::ServerError,
    code: ErrorCode,
) -> async_graphql::ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", code.as_str());
    error
}

/// The validation messages async-graphql uses for the limits we set.
fn is_limit(message: &str) -> bool {
    message.starts_with("Query is nested too deep") || message.starts_with("Query is too complex")
}

/// The messages async-graphql gives a value that does not parse as its input type (a
/// malformed `DateTime` in a variable, a string where a number belongs). They are raised as
/// the resolver reads its arguments, so they carry a path, but the caller's input is at fault.
fn is_input_value(message: &str) -> bool {
    message.starts_with("Failed to parse \"") || message.starts_with("Expected input type \"")
}

/// Codes the errors raised before any resolver ran: parsing, validation, the depth and
/// complexity limits, choosing the operation. Those carry no path; a resolver's error always
/// does. Limits are `LIMIT_EXCEEDED`, the rest `BAD_REQUEST`. An argument value that does not
/// parse as its type is `BAD_USER_INPUT`, path or not. Errors that already have a code keep it;
/// a resolver's error without one is left for the endpoint to make `INTERNAL`.
pub(crate) fn code_request_errors(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let coded = error
            .extensions
            .as_ref()
            .is_some_and(|e| e.get("code").is_some());
        if coded {
            continue;
        }
        if is_input_value(&error.message) {
            error
                .extensions
                .get_or_insert_with(Default::default)
                .set("code", ErrorCode::BadUserInput.as_str());
            continue;
        }
        if !error.path.is_empty() {
            continue;
        }
        let code = if is_limit(&error.message) {
            ErrorCode::LimitExceeded
        } else {
            ErrorCode::BadRequest
        };
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", code.as_str());
    }
}

#[cfg(test)]
mod tests {
    use async_graphql::{PathSegment, ServerError, Value};

    use super::*;

    fn code_of(e: &ServerError) -> Option<Value> {
        e.extensions.as_ref().and_then(|x| x.get("code")).cloned()
    }

    #[test]
    fn errors_before_any_resolver_get_a_code_and_resolver_errors_keep_theirs() {
        let mut resolver = ServerError::new("boom", None);
        resolver.path = vec![PathSegment::Field("me".into())];
        let mut bad_date = ServerError::new(
            "Failed to parse \"DateTime\": input contains invalid characters",
            None,
        );
        bad_date.path = vec![PathSegment::Field("cases".into())];
        let mut errors = vec![
            ServerError::new("Unknown field \"nope\" on type \"QueryRoot\".", None),
            ServerError::new("Query is nested too deep.", None),
            ServerError::new("Query is too complex.", None),
            with_code(ServerError::new("not yours", None), ErrorCode::Forbidden),
            resolver,
            bad_date,
        ];
        code_request_errors(&mut errors);
        let codes: Vec<Option<Value>> = errors.iter().map(code_of).collect();
        assert_eq!(
            codes,
            vec![
                Some(Value::from("BAD_REQUEST")),
                Some(Value::from("LIMIT_EXCEEDED")),
                Some(Value::from("LIMIT_EXCEEDED")),
                Some(Value::from("FORBIDDEN")),
                None,
                Some(Value::from("BAD_USER_INPUT")),
            ]
        );
    }
}
