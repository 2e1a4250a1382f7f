//! Routing and delivery: each case's route, its deliveries to connectors, the external reference
//! each connector gave it, case updates (Open311 `servicerequestupdates`), pauses, and the
//! hashed API keys Open311 clients present.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0002_delivery"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        deliveries(m).await?;
        references_and_updates(m).await?;
        pauses_and_keys(m).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ApiKeys::Table.into_iden(),
            Pauses::Table.into_iden(),
            CaseUpdates::Table.into_iden(),
            ExternalRefs::Table.into_iden(),
            Deliveries::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        for col in [Cases::SourceRef, Cases::Route] {
            m.alter_table(
                Table::alter()
                    .table(Cases::Table)
                    .drop_column(col)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}

/// The front-end's ids on cases, and the deliveries that carry cases out.
async fn deliveries(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.alter_table(
        Table::alter()
            .table(Cases::Table)
            .add_column(text_null(Cases::Route))
            .to_owned(),
    )
    .await?;
    // The front-end's own id for a case (FixMyStreet's report id), when it sent one.
    m.alter_table(
        Table::alter()
            .table(Cases::Table)
            .add_column(string_null(Cases::SourceRef))
            .to_owned(),
    )
    .await?;

    m.create_table(
        Table::create()
            .table(Deliveries::Table)
            .col(big_pk_auto(Deliveries::Id))
            .col(string(Deliveries::CaseId))
            .col(string(Deliveries::ConnectorId))
            .col(string(Deliveries::AgencyId))
            .col(string(Deliveries::Kind))
            .col(string(Deliveries::State))
            .col(string(Deliveries::IdempotencyKey))
            .col(integer(Deliveries::Attempts))
            .col(timestamp_with_time_zone_null(Deliveries::FirstAttemptAt))
            .col(timestamp_with_time_zone(Deliveries::NextAttemptAt))
            .col(timestamp_with_time_zone_null(Deliveries::LeaseUntil))
            .col(timestamp_with_time_zone_null(Deliveries::QueuedUntil))
            .col(text_null(Deliveries::LastError))
            .col(text_null(Deliveries::LastResponse))
            .col(string_null(Deliveries::ExternalRef))
            .col(text(Deliveries::Payload))
            .col(timestamp_with_time_zone(Deliveries::CreatedAt))
            .col(timestamp_with_time_zone(Deliveries::UpdatedAt))
            .col(timestamp_with_time_zone_null(Deliveries::SentAt))
            .foreign_key(
                ForeignKey::create()
                    .from(Deliveries::Table, Deliveries::CaseId)
                    .to(Cases::Table, Cases::Id),
            )
            .to_owned(),
    )
    .await?;
    for (name, cols) in [
        (
            "ix_deliveries_due",
            vec![Deliveries::State, Deliveries::NextAttemptAt],
        ),
        (
            "ix_deliveries_connector",
            vec![Deliveries::ConnectorId, Deliveries::State, Deliveries::Id],
        ),
        ("ix_deliveries_case", vec![Deliveries::CaseId]),
    ] {
        let mut index = Index::create();
        index.name(name).table(Deliveries::Table);
        for c in cols {
            index.col(c);
        }
        m.create_index(index.to_owned()).await?;
    }
    Ok(())
}

/// References connectors give cases, and updates to cases.
async fn references_and_updates(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(ExternalRefs::Table)
            .col(string(ExternalRefs::CaseId))
            .col(string(ExternalRefs::ConnectorId))
            .col(string(ExternalRefs::ExternalId))
            .col(big_integer(ExternalRefs::DeliveryId))
            .col(timestamp_with_time_zone(ExternalRefs::CreatedAt))
            .primary_key(
                Index::create()
                    .col(ExternalRefs::CaseId)
                    .col(ExternalRefs::ConnectorId),
            )
            .foreign_key(
                ForeignKey::create()
                    .from(ExternalRefs::Table, ExternalRefs::CaseId)
                    .to(Cases::Table, Cases::Id),
            )
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_external_refs_external")
            .table(ExternalRefs::Table)
            .col(ExternalRefs::ConnectorId)
            .col(ExternalRefs::ExternalId)
            .to_owned(),
    )
    .await?;

    m.create_table(
        Table::create()
            .table(CaseUpdates::Table)
            .col(big_pk_auto(CaseUpdates::Id))
            .col(string(CaseUpdates::CaseId))
            .col(string(CaseUpdates::Source))
            .col(string_null(CaseUpdates::SourceUpdateId))
            .col(string_null(CaseUpdates::Status))
            .col(string_null(CaseUpdates::ExternalStatusCode))
            .col(text(CaseUpdates::Description))
            .col(text(CaseUpdates::MediaUrls))
            .col(timestamp_with_time_zone(CaseUpdates::UpdatedAt))
            .col(timestamp_with_time_zone(CaseUpdates::CreatedAt))
            .foreign_key(
                ForeignKey::create()
                    .from(CaseUpdates::Table, CaseUpdates::CaseId)
                    .to(Cases::Table, Cases::Id),
            )
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ux_case_updates_source")
            .table(CaseUpdates::Table)
            .col(CaseUpdates::Source)
            .col(CaseUpdates::SourceUpdateId)
            .unique()
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_case_updates_updated_at")
            .table(CaseUpdates::Table)
            .col(CaseUpdates::UpdatedAt)
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_case_updates_case")
            .table(CaseUpdates::Table)
            .col(CaseUpdates::CaseId)
            .to_owned(),
    )
    .await?;
    Ok(())
}

/// Connector pauses and Open311 API keys.
async fn pauses_and_keys(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Pauses::Table)
            .col(string(Pauses::TargetType))
            .col(string(Pauses::TargetId))
            .col(string(Pauses::PausedBy))
            .col(text(Pauses::Reason))
            .col(timestamp_with_time_zone(Pauses::PausedAt))
            .primary_key(
                Index::create()
                    .col(Pauses::TargetType)
                    .col(Pauses::TargetId),
            )
            .to_owned(),
    )
    .await?;

    m.create_table(
        Table::create()
            .table(ApiKeys::Table)
            .col(string(ApiKeys::Id).primary_key())
            .col(string(ApiKeys::Name))
            .col(string_null(ApiKeys::JurisdictionId))
            .col(string(ApiKeys::KeyHash))
            .col(timestamp_with_time_zone(ApiKeys::CreatedAt))
            .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ux_api_keys_hash")
            .table(ApiKeys::Table)
            .col(ApiKeys::KeyHash)
            .unique()
            .to_owned(),
    )
    .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    Id,
    Route,
    SourceRef,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    CaseId,
    ConnectorId,
    AgencyId,
    Kind,
    State,
    IdempotencyKey,
    Attempts,
    FirstAttemptAt,
    NextAttemptAt,
    LeaseUntil,
    QueuedUntil,
    LastError,
    LastResponse,
    ExternalRef,
    Payload,
    CreatedAt,
    UpdatedAt,
    SentAt,
}

#[derive(DeriveIden)]
enum ExternalRefs {
    Table,
    CaseId,
    ConnectorId,
    ExternalId,
    DeliveryId,
    CreatedAt,
}

#[derive(DeriveIden)]
enum CaseUpdates {
    Table,
    Id,
    CaseId,
    Source,
    SourceUpdateId,
    Status,
    ExternalStatusCode,
    Description,
    MediaUrls,
    UpdatedAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Pauses {
    Table,
    TargetType,
    TargetId,
    PausedBy,
    Reason,
    PausedAt,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
    Name,
    JurisdictionId,
    KeyHash,
    CreatedAt,
    RevokedAt,
}
