//! The GraphQL schema: queries, mutations, their guards, and the limits that bound them.

pub mod access;
pub mod bounds;
mod documents;
mod guard;
mod mutation;
mod query;
mod sharing;
pub mod subscription;
mod types;

use async_graphql::{MergedObject, Schema};
use junction_store::Store;
use junction_store::audit::AuditWriter;

use crate::feed::FeedHub;
use crate::intake::Intake;

pub use access::SharingPolicy;
pub use documents::{DocumentCache, OperationSummary, PreparedDocument};
pub use guard::Can;
pub use subscription::SubscriptionRoot;

/// Every query.
#[derive(MergedObject, Default)]
#[graphql(name = "QueryRoot")]
pub struct Query(query::QueryRoot, sharing::SharingQuery);

/// Every mutation.
#[derive(MergedObject, Default)]
#[graphql(name = "MutationRoot")]
pub struct Mutation(mutation::MutationRoot, sharing::SharingMutation);

pub type JunctionSchema = Schema<Query, Mutation, SubscriptionRoot>;

/// What resolvers need besides the store.
#[derive(Clone)]
pub struct SchemaDeps {
    pub intake: Intake,
    pub sharing: SharingPolicy,
    pub feed: FeedHub,
    pub audit: AuditWriter,
}

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
    /// Longest a query may run; it is then stopped and answered `LIMIT_EXCEEDED`. Mutations
    /// run to the end, so that what they changed and what they answer agree.
    pub max_query_secs: u64,
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
            max_query_secs: 30,
            development: false,
        }
    }
}

/// Builds the schema with `store`, `deps` and `limits` available to every resolver.
pub fn build_schema(store: Store, deps: SchemaDeps, limits: Limits) -> JunctionSchema {
    builder(store, deps, limits).finish()
}

/// The same schema, for documents that have already passed every validation rule (see
/// [`PreparedDocument::validated`]): it checks only depth, complexity and fragment cycles,
/// which may differ from one request to the next, and skips the rules whose outcome is fixed
/// by the document's text.
pub fn build_prevalidated_schema(store: Store, deps: SchemaDeps, limits: Limits) -> JunctionSchema {
    builder(store, deps, limits)
        .validation_mode(async_graphql::ValidationMode::Fast)
        .finish()
}

fn builder(
    store: Store,
    deps: SchemaDeps,
    limits: Limits,
) -> async_graphql::SchemaBuilder<Query, Mutation, SubscriptionRoot> {
    let mut builder = Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
        .data(store)
        .data(deps.intake)
        .data(deps.sharing)
        .data(deps.feed)
        .data(deps.audit)
        .data(limits.clone())
        .limit_depth(limits.max_depth)
        .limit_complexity(limits.max_complexity)
        .limit_recursive_depth(32)
        .limit_directives(16);
    if !limits.development {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder
}

/// The schema in SDL, exactly as served (introspection settings do not change the SDL).
pub fn sdl() -> String {
    Schema::build(Query::default(), Mutation::default(), SubscriptionRoot)
        .finish()
        .sdl()
}
