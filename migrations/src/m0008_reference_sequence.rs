//! Case references on PostgreSQL come from a sequence, not from a row of `counters`: a
//! sequence hands out numbers without holding a lock until the transaction commits, so cases
//! are no longer taken in one at a time at the speed of a durable commit. The sequence starts
//! after the last reference the counter gave. SQLite, with one writer at a time, keeps the
//! counter.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0008_reference_sequence"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared("CREATE SEQUENCE IF NOT EXISTS case_reference_seq")
            .await?;
        db.execute_unprepared(
            "SELECT setval('case_reference_seq', COALESCE((SELECT value FROM counters \
             WHERE name = 'case_reference'), 0) + 1, false)",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if m.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = m.get_connection();
        db.execute_unprepared(
            "INSERT INTO counters (name, value) VALUES ('case_reference', \
             (SELECT last_value FROM case_reference_seq)) \
             ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value",
        )
        .await?;
        db.execute_unprepared("DROP SEQUENCE IF EXISTS case_reference_seq")
            .await?;
        Ok(())
    }
}
