//! Junction's API surfaces: GraphQL over HTTP and WebSocket, Open311, the CSV export and
//! attachments, each a module that uses the one audited-request layer (`layer.rs`) and never
//! another surface; and intake, the one way a case comes in. The only crate that knows
//! GraphQL.
//!
//! Every GraphQL field and mutation is guarded by a [`junction_domain::Action`] decided in
//! `junction-domain`; every operation, accepted or not, leaves exactly one audit record that is
//! durable before its response is sent; every error carries one code from [`ErrorCode`], and
//! internal detail goes to the log, never to the caller.

mod attachments;
pub mod auth;
pub mod cohort;
mod context;
mod error;
mod export;
pub mod feed;
pub mod graphql;
pub mod hooks;
mod http;
pub mod intake;
mod layer;
pub mod open311;
mod request_audit;
mod request_metrics;
pub mod revocation;
mod routes;
mod ws;

pub use auth::{AuthError, Authenticator, Claims, KeySource, TokenInfo};
pub use context::RequestCtx;
pub use error::{ApiError, ErrorCode};
pub use feed::FeedHub;
pub use graphql::{
    JunctionSchema, Limits, SchemaDeps, SharingPolicy, build_prevalidated_schema, build_schema,
};
pub use intake::{DeliveryWaker, Intake, NoWaker};
pub use layer::ApiState;
pub(crate) use request_audit::RequestAudit;
pub use routes::router;
