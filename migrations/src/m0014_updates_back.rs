//! Updates coming back from back-ends, and the schedules that fetch them: when a case's
//! status last changed (by the changer's clock, so an older update never overwrites a newer
//! state); updates that arrived before the case's reference (held until it is known); and each
//! schedule's state, so a due run happens once across processes and survives a restart.

use sea_orm_migration::{
    prelude::*,
    schema::{
        big_integer, big_pk_auto, string, string_null, text, text_null, timestamp_with_time_zone,
        timestamp_with_time_zone_null,
    },
};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0014_updates_back"
    }
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    StatusAt,
}

#[derive(DeriveIden)]
enum HeldUpdates {
    Table,
    Id,
    ConnectorId,
    UpdateId,
    ExternalRef,
    OurId,
    Body,
    Mapped,
    ReceivedAt,
}

#[derive(DeriveIden)]
enum Schedules {
    Table,
    Name,
    Kind,
    ConnectorId,
    EverySecs,
    NextRunAt,
    LeaseOwner,
    LeaseUntil,
    LastStartedAt,
    LastFinishedAt,
    LastOutcome,
    LastCounts,
    LastError,
    Cursor,
}

async fn status_at(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.alter_table(
        Table::alter()
            .table(Cases::Table)
            .add_column(
                ColumnDef::new(Cases::StatusAt)
                    .timestamp_with_time_zone()
                    .null(),
            )
            .to_owned(),
    )
    .await
}

async fn held_updates(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(HeldUpdates::Table)
            .col(big_pk_auto(HeldUpdates::Id))
            .col(string(HeldUpdates::ConnectorId))
            .col(string(HeldUpdates::UpdateId))
            .col(string(HeldUpdates::ExternalRef))
            .col(string_null(HeldUpdates::OurId))
            .col(text(HeldUpdates::Body))
            .col(string(HeldUpdates::Mapped))
            .col(timestamp_with_time_zone(HeldUpdates::ReceivedAt))
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ux_held_updates_update")
            .table(HeldUpdates::Table)
            .col(HeldUpdates::ConnectorId)
            .col(HeldUpdates::UpdateId)
            .unique()
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_held_updates_ref")
            .table(HeldUpdates::Table)
            .col(HeldUpdates::ConnectorId)
            .col(HeldUpdates::ExternalRef)
            .to_owned(),
    )
    .await
}

async fn schedules(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Schedules::Table)
            .col(string(Schedules::Name).primary_key())
            .col(string(Schedules::Kind))
            .col(string_null(Schedules::ConnectorId))
            .col(big_integer(Schedules::EverySecs))
            .col(timestamp_with_time_zone(Schedules::NextRunAt))
            .col(string_null(Schedules::LeaseOwner))
            .col(timestamp_with_time_zone_null(Schedules::LeaseUntil))
            .col(timestamp_with_time_zone_null(Schedules::LastStartedAt))
            .col(timestamp_with_time_zone_null(Schedules::LastFinishedAt))
            .col(string_null(Schedules::LastOutcome))
            .col(text_null(Schedules::LastCounts))
            .col(text_null(Schedules::LastError))
            .col(text_null(Schedules::Cursor))
            .to_owned(),
    )
    .await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        status_at(m).await?;
        held_updates(m).await?;
        schedules(m).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Schedules::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(HeldUpdates::Table).to_owned())
            .await?;
        m.alter_table(
            Table::alter()
                .table(Cases::Table)
                .drop_column(Cases::StatusAt)
                .to_owned(),
        )
        .await
    }
}
