//! Parsed documents, kept by their text: a client sends the same few documents over and over,
//! and parsing is the largest single cost of a small query. Also what a document declares,
//! for the audit record.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::ServerError;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

use crate::ErrorCode;

/// Documents longer than this are parsed every time rather than kept.
const MAX_KEPT_LEN: usize = 16 * 1024;

/// How many distinct documents are kept; the least used go first.
const CAPACITY: usize = 1_024;

/// Documents already parsed. Cheap to clone.
#[derive(Clone)]
pub struct DocumentCache(Arc<quick_cache::sync::Cache<String, ExecutableDocument>>);

impl Default for DocumentCache {
    fn default() -> Self {
        DocumentCache(Arc::new(quick_cache::sync::Cache::new(CAPACITY)))
    }
}

impl std::fmt::Debug for DocumentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentCache")
            .field("len", &self.0.len())
            .finish()
    }
}

impl DocumentCache {
    /// Gives `request` its parsed document, from the cache when the text has been seen before,
    /// and says what the document declares. A document that does not parse is refused here
    /// with `BAD_REQUEST`; depth, complexity and validation still run on every request.
    pub fn prepare(
        &self,
        request: &mut async_graphql::Request,
    ) -> Result<OperationSummary, ServerError> {
        let keep = request.query.len() <= MAX_KEPT_LEN;
        let doc = match keep.then(|| self.0.get(request.query.as_str())).flatten() {
            Some(doc) => doc,
            None => {
                let doc = async_graphql::parser::parse_query(&request.query).map_err(|e| {
                    crate::error::with_code(ServerError::from(e), ErrorCode::BadRequest)
                })?;
                if keep {
                    self.0.insert(request.query.clone(), doc.clone());
                }
                doc
            }
        };
        let summary = OperationSummary::from_document(&doc);
        request.set_parsed_query(doc);
        Ok(summary)
    }
}

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

fn type_name(ty: OperationType) -> &'static str {
    match ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_seen_before_is_not_parsed_again() {
        let cache = DocumentCache::default();
        let mut first = async_graphql::Request::new("query Me { me { subject } }");
        let summary = cache.prepare(&mut first).unwrap();
        assert_eq!(summary.selected(None), Some("query"));
        assert_eq!(cache.0.len(), 1);
        let mut again = async_graphql::Request::new("query Me { me { subject } }");
        cache.prepare(&mut again).unwrap();
        assert_eq!(cache.0.len(), 1);
        let doc = again.parsed_query().unwrap();
        assert_eq!(doc.operations.iter().count(), 1);

        // A document that does not parse is refused, coded, and not kept.
        let error = cache
            .prepare(&mut async_graphql::Request::new("query {"))
            .unwrap_err();
        let code = error
            .extensions
            .as_ref()
            .and_then(|e| e.get("code"))
            .cloned();
        assert_eq!(code, Some(async_graphql::Value::from("BAD_REQUEST")));
        // One too long to keep is parsed every time.
        let long = format!(
            "mutation Long {{ me {{ subject }} }} #{}",
            "x".repeat(MAX_KEPT_LEN)
        );
        let summary = cache
            .prepare(&mut async_graphql::Request::new(long))
            .unwrap();
        assert_eq!(summary.selected(Some("Long")), Some("mutation"));
        assert_eq!(cache.0.len(), 1);
    }
}
