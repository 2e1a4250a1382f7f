//! Cases gain the client's idempotency key (a front-end's own id for the report, or an
//! `Idempotency-Key`), unique per client, so a report sent again is recognised and not taken
//! in twice.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0012_case_idempotency_key"
    }
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    CreatedBy,
    IdempotencyKey,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Cases::Table)
                .add_column(ColumnDef::new(Cases::IdempotencyKey).string().null())
                .to_owned(),
        )
        .await?;
        // NULL keys never collide, on SQLite and PostgreSQL alike.
        m.create_index(
            Index::create()
                .name("ux_cases_idempotency")
                .table(Cases::Table)
                .col(Cases::CreatedBy)
                .col(Cases::IdempotencyKey)
                .unique()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ux_cases_idempotency").to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Cases::Table)
                .drop_column(Cases::IdempotencyKey)
                .to_owned(),
        )
        .await
    }
}
