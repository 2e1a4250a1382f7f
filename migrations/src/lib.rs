//! Junction's database schema as sea-orm migrations, the same for SQLite and PostgreSQL.
//!
//! JSON-shaped columns are stored as text on both backends so that rows round-trip identically;
//! times are stored with their zone. Never edit a migration that has shipped: add another.

pub use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_delivery;
mod m0003_sharing;
mod m0004_share_feed_position;
mod m0005_attachments;
mod m0006_audit_object_index;
mod m0007_delivery_outcomes;
mod m0008_reference_sequence;
mod m0009_case_type_published;
mod m0010_feed_placeholder_indexes;
mod m0011_token_revocations;
mod m0012_case_idempotency_key;
mod m0013_open311_dropin;
mod m0014_updates_back;
mod m0015_backend_keys;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_delivery::Migration),
            Box::new(m0003_sharing::Migration),
            Box::new(m0004_share_feed_position::Migration),
            Box::new(m0005_attachments::Migration),
            Box::new(m0006_audit_object_index::Migration),
            Box::new(m0007_delivery_outcomes::Migration),
            Box::new(m0008_reference_sequence::Migration),
            Box::new(m0009_case_type_published::Migration),
            Box::new(m0010_feed_placeholder_indexes::Migration),
            Box::new(m0011_token_revocations::Migration),
            Box::new(m0012_case_idempotency_key::Migration),
            Box::new(m0013_open311_dropin::Migration),
            Box::new(m0014_updates_back::Migration),
            Box::new(m0015_backend_keys::Migration),
        ]
    }
}
