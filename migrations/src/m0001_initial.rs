//! The first schema: organisations, case types, connectors, cases and their history, the audit chain.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0001_initial"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        catalogue(m).await?;
        cases(m).await?;
        audit_chain(m).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Counters::Table.into_iden(),
            AuditHead::Table.into_iden(),
            AuditLog::Table.into_iden(),
            CaseEvents::Table.into_iden(),
            Cases::Table.into_iden(),
            Connectors::Table.into_iden(),
            CaseTypes::Table.into_iden(),
            Agencies::Table.into_iden(),
            Jurisdictions::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        Ok(())
    }
}

/// Jurisdictions, agencies, case types and connectors.
async fn catalogue(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Jurisdictions::Table)
            .col(string(Jurisdictions::Id).primary_key())
            .col(string(Jurisdictions::Name))
            .col(timestamp_with_time_zone(Jurisdictions::CreatedAt))
            .col(timestamp_with_time_zone(Jurisdictions::UpdatedAt))
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(Agencies::Table)
            .col(string(Agencies::Id).primary_key())
            .col(string(Agencies::JurisdictionId))
            .col(string(Agencies::Name))
            .col(string(Agencies::Kind))
            .col(string_null(Agencies::Email))
            .col(timestamp_with_time_zone(Agencies::CreatedAt))
            .col(timestamp_with_time_zone(Agencies::UpdatedAt))
            .foreign_key(
                ForeignKey::create()
                    .from(Agencies::Table, Agencies::JurisdictionId)
                    .to(Jurisdictions::Table, Jurisdictions::Id),
            )
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(CaseTypes::Table)
            .col(string(CaseTypes::Id).primary_key())
            .col(string(CaseTypes::JurisdictionId))
            .col(string(CaseTypes::Code))
            .col(string(CaseTypes::Name))
            .col(text(CaseTypes::Description))
            .col(string_null(CaseTypes::GroupName))
            .col(text(CaseTypes::Keywords))
            .col(string(CaseTypes::AgencyId))
            .col(text(CaseTypes::Fields))
            .col(boolean(CaseTypes::Active))
            .col(timestamp_with_time_zone(CaseTypes::CreatedAt))
            .col(timestamp_with_time_zone(CaseTypes::UpdatedAt))
            .foreign_key(
                ForeignKey::create()
                    .from(CaseTypes::Table, CaseTypes::JurisdictionId)
                    .to(Jurisdictions::Table, Jurisdictions::Id),
            )
            .foreign_key(
                ForeignKey::create()
                    .from(CaseTypes::Table, CaseTypes::AgencyId)
                    .to(Agencies::Table, Agencies::Id),
            )
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ux_case_types_code")
            .table(CaseTypes::Table)
            .col(CaseTypes::JurisdictionId)
            .col(CaseTypes::Code)
            .unique()
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(Connectors::Table)
            .col(string(Connectors::Id).primary_key())
            .col(string(Connectors::Kind))
            .col(text(Connectors::Params))
            .col(boolean(Connectors::Paused))
            .col(timestamp_with_time_zone(Connectors::CreatedAt))
            .col(timestamp_with_time_zone(Connectors::UpdatedAt))
            .to_owned(),
    )
    .await?;
    Ok(())
}

/// Cases and their history.
async fn cases(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Cases::Table)
            .col(string(Cases::Id).primary_key())
            .col(string_uniq(Cases::Reference))
            .col(string(Cases::JurisdictionId))
            .col(string(Cases::CaseTypeId))
            .col(string(Cases::AgencyId))
            .col(string(Cases::Status))
            .col(text(Cases::Description))
            .col(double_null(Cases::Lat))
            .col(double_null(Cases::Long))
            .col(string_null(Cases::Uprn))
            .col(text_null(Cases::Address))
            .col(string_null(Cases::SubmitterName))
            .col(string_null(Cases::SubmitterEmail))
            .col(string_null(Cases::SubmitterPhone))
            .col(text(Cases::Fields))
            .col(string(Cases::CreatedBy))
            .col(timestamp_with_time_zone(Cases::CreatedAt))
            .col(timestamp_with_time_zone(Cases::UpdatedAt))
            .col(big_integer(Cases::Version))
            .foreign_key(
                ForeignKey::create()
                    .from(Cases::Table, Cases::CaseTypeId)
                    .to(CaseTypes::Table, CaseTypes::Id),
            )
            .foreign_key(
                ForeignKey::create()
                    .from(Cases::Table, Cases::AgencyId)
                    .to(Agencies::Table, Agencies::Id),
            )
            .to_owned(),
    )
    .await?;
    for (name, col) in [
        ("ix_cases_status", Cases::Status),
        ("ix_cases_case_type", Cases::CaseTypeId),
        ("ix_cases_agency", Cases::AgencyId),
        ("ix_cases_created_at", Cases::CreatedAt),
    ] {
        m.create_index(
            Index::create()
                .name(name)
                .table(Cases::Table)
                .col(col)
                .to_owned(),
        )
        .await?;
    }
    m.create_table(
        Table::create()
            .table(CaseEvents::Table)
            .col(big_pk_auto(CaseEvents::Id))
            .col(string(CaseEvents::CaseId))
            .col(string(CaseEvents::Kind))
            .col(string(CaseEvents::Actor))
            .col(timestamp_with_time_zone(CaseEvents::At))
            .col(text(CaseEvents::Data))
            .foreign_key(
                ForeignKey::create()
                    .from(CaseEvents::Table, CaseEvents::CaseId)
                    .to(Cases::Table, Cases::Id),
            )
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_case_events_case")
            .table(CaseEvents::Table)
            .col(CaseEvents::CaseId)
            .to_owned(),
    )
    .await?;
    Ok(())
}

/// The audit chain, its head row and the counters.
async fn audit_chain(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(AuditLog::Table)
            .col(big_integer(AuditLog::Seq).primary_key())
            .col(timestamp_with_time_zone(AuditLog::At))
            .col(string(AuditLog::Actor))
            .col(string_null(AuditLog::Agency))
            .col(text(AuditLog::Roles))
            .col(string_null(AuditLog::RequestId))
            .col(string_null(AuditLog::ClientAddr))
            .col(string(AuditLog::Kind))
            .col(text_null(AuditLog::Operation))
            .col(string_null(AuditLog::ObjectType))
            .col(string_null(AuditLog::ObjectId))
            .col(text_null(AuditLog::Change))
            .col(string(AuditLog::PrevHash))
            .col(string(AuditLog::Hash))
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_audit_actor")
            .table(AuditLog::Table)
            .col(AuditLog::Actor)
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_audit_at")
            .table(AuditLog::Table)
            .col(AuditLog::At)
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_audit_object")
            .table(AuditLog::Table)
            .col(AuditLog::ObjectType)
            .col(AuditLog::ObjectId)
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(AuditHead::Table)
            .col(integer(AuditHead::Id).primary_key())
            .col(big_integer(AuditHead::Seq))
            .col(string(AuditHead::Hash))
            .to_owned(),
    )
    .await?;
    m.exec_stmt(
        Query::insert()
            .into_table(AuditHead::Table)
            .columns([AuditHead::Id, AuditHead::Seq, AuditHead::Hash])
            .values_panic([1.into(), 0i64.into(), junction_genesis().into()])
            .to_owned(),
    )
    .await?;
    m.create_table(
        Table::create()
            .table(Counters::Table)
            .col(string(Counters::Name).primary_key())
            .col(big_integer(Counters::Value))
            .to_owned(),
    )
    .await?;
    Ok(())
}

/// The hash before the first audit record (64 zeros); the domain crate names the same value.
fn junction_genesis() -> String {
    "0".repeat(64)
}

#[derive(DeriveIden)]
enum Jurisdictions {
    Table,
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Agencies {
    Table,
    Id,
    JurisdictionId,
    Name,
    Kind,
    Email,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CaseTypes {
    Table,
    Id,
    JurisdictionId,
    Code,
    Name,
    Description,
    GroupName,
    Keywords,
    AgencyId,
    Fields,
    Active,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Connectors {
    Table,
    Id,
    Kind,
    Params,
    Paused,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    Id,
    Reference,
    JurisdictionId,
    CaseTypeId,
    AgencyId,
    Status,
    Description,
    Lat,
    Long,
    Uprn,
    Address,
    SubmitterName,
    SubmitterEmail,
    SubmitterPhone,
    Fields,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
    Version,
}

#[derive(DeriveIden)]
enum CaseEvents {
    Table,
    Id,
    CaseId,
    Kind,
    Actor,
    At,
    Data,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Seq,
    At,
    Actor,
    Agency,
    Roles,
    RequestId,
    ClientAddr,
    Kind,
    Operation,
    ObjectType,
    ObjectId,
    Change,
    PrevHash,
    Hash,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    Id,
    Seq,
    Hash,
}

#[derive(DeriveIden)]
enum Counters {
    Table,
    Name,
    Value,
}
