//! Parsed documents, kept by their text: a client sends the same few documents over and over,
//! and parsing is the largest single cost of a small query.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;

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
    /// Gives `request` its parsed document when the text has been seen before, parsing and
    /// keeping it otherwise. A document that does not parse is left for the schema to refuse,
    /// with the usual error; depth, complexity and validation still run on every request.
    pub fn prime(&self, request: &mut async_graphql::Request) {
        if request.query.len() > MAX_KEPT_LEN {
            return;
        }
        if let Some(doc) = self.0.get(request.query.as_str()) {
            request.set_parsed_query(doc);
            return;
        }
        if let Ok(doc) = async_graphql::parser::parse_query(&request.query) {
            self.0.insert(request.query.clone(), doc.clone());
            request.set_parsed_query(doc);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_seen_before_is_not_parsed_again() {
        let cache = DocumentCache::default();
        let mut first = async_graphql::Request::new("query Me { me { subject } }");
        cache.prime(&mut first);
        assert_eq!(cache.0.len(), 1);
        let mut again = async_graphql::Request::new("query Me { me { subject } }");
        cache.prime(&mut again);
        assert_eq!(cache.0.len(), 1);
        let doc = again.parsed_query().unwrap();
        assert_eq!(doc.operations.iter().count(), 1);

        // Nothing is kept for a document that does not parse, or one too long to keep.
        cache.prime(&mut async_graphql::Request::new("query {"));
        let long = format!(
            "query Long {{ me {{ subject }} }} #{}",
            "x".repeat(MAX_KEPT_LEN)
        );
        cache.prime(&mut async_graphql::Request::new(long));
        assert_eq!(cache.0.len(), 1);
    }
}
