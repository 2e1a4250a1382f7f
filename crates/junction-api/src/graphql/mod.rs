//! The GraphQL schema: queries, mutations, their guards, and the limits that bound them.

mod extension;
mod guard;
mod mutation;
mod query;
mod types;

use async_graphql::{EmptySubscription, Schema};
use junction_store::Store;

use crate::intake::Intake;

pub use extension::{OperationSlot, OperationSummary};
pub use guard::Can;
pub use mutation::MutationRoot;
pub use query::QueryRoot;

pub type JunctionSchema = Schema<QueryRoot, MutationRoot, EmptySubscription>;

/// Bounds on what one request may ask for.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Deepest selection nesting accepted.
    pub max_depth: usize,
    /// Highest total cost accepted; a list field costs its page size times its children.
    pub max_complexity: usize,
    /// Largest page a list field returns.
    pub max_page_size: u64,
    /// Introspection and GraphiQL; off in production.
    pub development: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 256 * 1024,
            max_depth: 10,
            max_complexity: 2_000,
            max_page_size: 100,
            development: false,
        }
    }
}

/// Builds the schema with `store` and `limits` available to every resolver.
pub fn build_schema(store: Store, intake: Intake, limits: Limits) -> JunctionSchema {
    let mut builder = Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .data(store)
        .data(intake)
        .data(limits.clone())
        .extension(extension::OperationCapture)
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(16);
    if !limits.development {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The schema in SDL, exactly as served (introspection settings do not change the SDL).
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, EmptySubscription)
        .finish()
        .sdl()
}
