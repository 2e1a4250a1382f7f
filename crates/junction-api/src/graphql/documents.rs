//! Parsed documents, kept by their text: a client sends the same few documents over and over,
//! and parsing is the largest single cost of a small query. Also what a document declares,
//! for the audit record, and whether a document has already passed validation.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::ServerError;
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

/// Documents longer than this are parsed every time rather than kept.
const MAX_KEPT_LEN: usize = 16 * 1024;

/// How many distinct documents are kept; the least used go first.
const CAPACITY: usize = 1_024;

/// Documents already parsed. Cheap to clone.
#[derive(Clone)]
pub struct DocumentCache(Arc<quick_cache::sync::Cache<String, Arc<Kept>>>);

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

/// A parsed document, what it declares, and the operations it has passed full validation for.
#[derive(Debug)]
pub struct Kept {
    doc: ExecutableDocument,
    summary: OperationSummary,
    /// No operation in the document declares variables. Validation then depends on nothing
    /// but the text and the operation selected, so a pass holds for every later request that
    /// sends the same text and selects the same operation.
    variable_free: bool,
    /// The operation names (as the requests gave them) that passed.
    passed: Mutex<Vec<Option<String>>>,
}

/// Most operation names remembered as validated for one document.
const MAX_PASSED: usize = 16;

/// A request's document, ready to execute.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    kept: Arc<Kept>,
    operation_name: Option<String>,
}

impl PreparedDocument {
    /// What the document declares.
    pub fn summary(&self) -> &OperationSummary {
        &self.kept.summary
    }

    /// True when the same text, selecting the same operation, has already passed every
    /// validation rule: the request may run on the schema that only checks limits.
    pub fn validated(&self) -> bool {
        self.kept.variable_free
            && self
                .kept
                .passed
                .lock()
                .is_ok_and(|p| p.contains(&self.operation_name))
    }

    /// Notes that the document passed every validation rule for this request's operation.
    /// Call it only after a run on the fully validating schema that raised no request error.
    pub fn mark_validated(&self) {
        if !self.kept.variable_free {
            return;
        }
        if let Ok(mut passed) = self.kept.passed.lock()
            && passed.len() < MAX_PASSED
            && !passed.contains(&self.operation_name)
        {
            passed.push(self.operation_name.clone());
        }
    }
}

impl DocumentCache {
    /// Gives `request` its parsed document, from the cache when the text has been seen before,
    /// and says what the document declares. A document that does not parse is refused here
    /// with `BAD_REQUEST`, and one that breaks a bound of [`super::bounds`] (at most
    /// `max_fields` fields once fragments are expanded) with `LIMIT_EXCEEDED`, before it is
    /// kept; depth and complexity are still checked on every request.
    pub fn prepare(
        &self,
        request: &mut async_graphql::Request,
        max_fields: usize,
    ) -> Result<PreparedDocument, ServerError> {
        let keep = request.query.len() <= MAX_KEPT_LEN;
        let kept = match keep.then(|| self.0.get(request.query.as_str())).flatten() {
            Some(kept) => kept,
            None => {
                let doc = super::bounds::parse(&request.query, max_fields)?;
                let kept = Arc::new(Kept {
                    summary: OperationSummary::from_document(&doc),
                    variable_free: doc
                        .operations
                        .iter()
                        .all(|(_, op)| op.node.variable_definitions.is_empty()),
                    doc,
                    passed: Mutex::new(Vec::new()),
                });
                if keep {
                    self.0.insert(request.query.clone(), kept.clone());
                }
                kept
            }
        };
        request.set_parsed_query(kept.doc.clone());
        Ok(PreparedDocument {
            kept,
            operation_name: request.operation_name.clone(),
        })
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
        let prepared = cache.prepare(&mut first, 2_000).unwrap();
        assert_eq!(prepared.summary().selected(None), Some("query"));
        assert_eq!(cache.0.len(), 1);
        let mut again = async_graphql::Request::new("query Me { me { subject } }");
        cache.prepare(&mut again, 2_000).unwrap();
        assert_eq!(cache.0.len(), 1);
        let doc = again.parsed_query().unwrap();
        assert_eq!(doc.operations.iter().count(), 1);

        // A document that does not parse is refused, coded, and not kept.
        let error = cache
            .prepare(&mut async_graphql::Request::new("query {"), 2_000)
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
        let prepared = cache
            .prepare(&mut async_graphql::Request::new(long), 2_000)
            .unwrap();
        assert_eq!(prepared.summary().selected(Some("Long")), Some("mutation"));
        assert_eq!(cache.0.len(), 1);
    }

    #[test]
    fn a_pass_counts_only_for_the_same_text_and_operation_and_never_with_variables() {
        let cache = DocumentCache::default();
        let text = "query A { me { subject } } query B { me { roles } }";
        let request = |name: &str| async_graphql::Request::new(text).operation_name(name);

        let a = cache.prepare(&mut request("A"), 2_000).unwrap();
        assert!(!a.validated(), "nothing has passed yet");
        a.mark_validated();
        assert!(cache.prepare(&mut request("A"), 2_000).unwrap().validated());
        // The other operation in the same text has not passed.
        assert!(!cache.prepare(&mut request("B"), 2_000).unwrap().validated());
        // Nor has the same text with no operation chosen.
        assert!(
            !cache
                .prepare(&mut async_graphql::Request::new(text), 2_000)
                .unwrap()
                .validated()
        );

        // A document with variables is validated afresh every time: its variables' values
        // take part.
        let with_vars = "query C($id: ID!) { case(id: $id) { reference } }";
        let c = cache
            .prepare(&mut async_graphql::Request::new(with_vars), 2_000)
            .unwrap();
        c.mark_validated();
        assert!(
            !cache
                .prepare(&mut async_graphql::Request::new(with_vars), 2_000)
                .unwrap()
                .validated()
        );
    }
}
