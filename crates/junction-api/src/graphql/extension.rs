//! Captures each request's operation type for the audit log, and gives parse and validation
//! errors their codes (`BAD_REQUEST`, or `LIMIT_EXCEEDED` for depth and complexity).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextValidation,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};
use async_graphql::{ServerError, ServerResult, ValidationResult, Variables};

use crate::ErrorCode;

/// What the document declared: the type of its anonymous operation, or of each named one.
#[derive(Debug, Clone, Default)]
pub struct OperationSummary {
    pub single: Option<&'static str>,
    pub named: HashMap<String, &'static str>,
}

impl OperationSummary {
    /// What a parsed document declares.
    pub fn from_document(doc: &ExecutableDocument) -> Self {
        match &doc.operations {
            DocumentOperations::Single(op) => OperationSummary {
                single: Some(type_name(op.node.ty)),
                named: HashMap::new(),
            },
            DocumentOperations::Multiple(ops) => OperationSummary {
                single: None,
                named: ops
                    .iter()
                    .map(|(name, op)| (name.to_string(), type_name(op.node.ty)))
                    .collect(),
            },
        }
    }

    /// The name of the operation the request selects: the one asked for, or the document's only
    /// named operation.
    pub fn selected_name(&self, operation_name: Option<&str>) -> Option<String> {
        match operation_name {
            Some(name) => Some(name.to_string()),
            None if self.single.is_none() && self.named.len() == 1 => {
                self.named.keys().next().cloned()
            }
            None => None,
        }
    }

    /// The type of the operation the request selects (`query`, `mutation`, `subscription`).
    pub fn selected(&self, operation_name: Option<&str>) -> Option<&'static str> {
        match (self.single, operation_name) {
            (Some(ty), _) => Some(ty),
            (None, Some(name)) => self.named.get(name).copied(),
            (None, None) if self.named.len() == 1 => self.named.values().next().copied(),
            _ => None,
        }
    }
}

/// Filled in while the request's document is parsed.
#[derive(Debug, Clone, Default)]
pub struct OperationSlot(pub Arc<Mutex<Option<OperationSummary>>>);

pub(super) struct OperationCapture;

impl ExtensionFactory for OperationCapture {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationCaptureExtension)
    }
}

struct OperationCaptureExtension;

fn type_name(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

fn with_code(mut error: ServerError, code: ErrorCode) -> ServerError {
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

#[async_trait::async_trait]
impl Extension for OperationCaptureExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next
            .run(ctx, query, variables)
            .await
            .map_err(|e| with_code(e, ErrorCode::BadRequest))?;
        if let Some(slot) = ctx.data_opt::<OperationSlot>() {
            let summary = OperationSummary::from_document(&doc);
            if let Ok(mut guard) = slot.0.lock() {
                *guard = Some(summary);
            }
        }
        Ok(doc)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|errors| {
            errors
                .into_iter()
                .map(|e| {
                    let code = if is_limit(&e.message) {
                        ErrorCode::LimitExceeded
                    } else {
                        ErrorCode::BadRequest
                    };
                    with_code(e, code)
                })
                .collect()
        })
    }
}
