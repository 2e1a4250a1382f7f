//! Junction's store: the only crate that knows sea-orm and SQL.
//!
//! Repositories take and return domain types. Every state change writes its audit entry in the
//! same transaction as the change, through [`audit::append`], so the change and its record are
//! durable together or not at all. The same code runs on SQLite and PostgreSQL.

pub mod api_keys;
pub mod attachments;
pub mod audit;
pub mod cases;
pub mod catalogue;
mod db;
pub mod deliveries;
mod entity;
mod error;
pub mod inbound;
pub mod pauses;
mod pool;
pub mod processes;
pub mod revocations;
pub mod schedules;
pub mod sharing;
pub mod updates;

pub use db::{Backend, Store, WriteTxn};
pub use error::StoreError;
pub use pool::{has_stable_plans, pg_pool_options, sqlite_pool_options, stable_plans};
