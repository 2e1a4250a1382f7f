//! Unknown outcomes and the processes that hold deliveries: each claim names the process that
//! holds it (`lease_owner`), processes keep a heartbeat in `processes`, and a delivery whose
//! last attempt may have arrived says since when (`ambiguous_since`) and how many checks of it
//! were inconclusive (`checks`).

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0007_delivery_outcomes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(Deliveries::Table)
                .add_column(string_null(Deliveries::LeaseOwner))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Deliveries::Table)
                .add_column(timestamp_with_time_zone_null(Deliveries::AmbiguousSince))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Deliveries::Table)
                .add_column(integer(Deliveries::Checks).default(0))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Processes::Table)
                .col(string(Processes::Id).primary_key())
                .col(string(Processes::Host))
                .col(big_integer(Processes::Pid))
                .col(timestamp_with_time_zone(Processes::StartedAt))
                .col(timestamp_with_time_zone(Processes::HeartbeatAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Processes::Table).to_owned())
            .await?;
        for column in [
            Deliveries::LeaseOwner,
            Deliveries::AmbiguousSince,
            Deliveries::Checks,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Deliveries::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    LeaseOwner,
    AmbiguousSince,
    Checks,
}

#[derive(DeriveIden)]
enum Processes {
    Table,
    Id,
    Host,
    Pid,
    StartedAt,
    HeartbeatAt,
}
