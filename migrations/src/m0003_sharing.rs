//! Sharing with partner agencies: data sharing agreements, the shares of cases made under them,
//! the partner feed's commit-ordered positions on case events, and disclosure records in the
//! audit log.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0003_sharing"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        agreements_and_shares(m).await?;
        partner_feed(m).await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(CaseShares::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Agreements::Table).to_owned())
            .await?;
        m.drop_index(
            Index::drop()
                .name("ux_case_events_feed_seq")
                .table(CaseEvents::Table)
                .to_owned(),
        )
        .await?;
        for (table, column) in [
            (
                CaseEvents::Table.into_iden(),
                CaseEvents::FeedSeq.into_iden(),
            ),
            (AuditHead::Table.into_iden(), AuditHead::FeedSeq.into_iden()),
            (
                AuditLog::Table.into_iden(),
                AuditLog::Disclosure.into_iden(),
            ),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}

/// Sharing agreements and the shares made under them.
async fn agreements_and_shares(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    m.create_table(
        Table::create()
            .table(Agreements::Table)
            .col(string(Agreements::Id).primary_key())
            .col(string(Agreements::JurisdictionId))
            .col(string(Agreements::Title))
            .col(string(Agreements::PartnerAgencyId))
            .col(text(Agreements::CaseTypes))
            .col(text(Agreements::Purposes))
            .col(text(Agreements::LawfulBasis))
            .col(string(Agreements::Ceiling))
            .col(text_null(Agreements::Fields))
            .col(timestamp_with_time_zone(Agreements::ValidFrom))
            .col(timestamp_with_time_zone_null(Agreements::ValidTo))
            .col(string_null(Agreements::ReviewDate))
            .col(string(Agreements::Status))
            .col(string(Agreements::Source))
            .col(string_null(Agreements::ConfigHash))
            .col(timestamp_with_time_zone(Agreements::CreatedAt))
            .col(timestamp_with_time_zone(Agreements::UpdatedAt))
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ix_agreements_partner")
            .table(Agreements::Table)
            .col(Agreements::PartnerAgencyId)
            .to_owned(),
    )
    .await?;

    m.create_table(
        Table::create()
            .table(CaseShares::Table)
            .col(big_pk_auto(CaseShares::Id))
            .col(string(CaseShares::CaseId))
            .col(string(CaseShares::AgencyId))
            .col(string(CaseShares::AgreementId))
            .col(string_null(CaseShares::Rule))
            .col(text(CaseShares::Reason))
            .col(string(CaseShares::SharedBy))
            .col(timestamp_with_time_zone(CaseShares::SharedAt))
            .col(timestamp_with_time_zone_null(CaseShares::UnsharedAt))
            .col(string_null(CaseShares::UnsharedBy))
            .col(text_null(CaseShares::UnshareReason))
            .foreign_key(
                ForeignKey::create()
                    .from(CaseShares::Table, CaseShares::CaseId)
                    .to(Cases::Table, Cases::Id),
            )
            .foreign_key(
                ForeignKey::create()
                    .from(CaseShares::Table, CaseShares::AgreementId)
                    .to(Agreements::Table, Agreements::Id),
            )
            .to_owned(),
    )
    .await?;
    for (name, cols) in [
        (
            "ix_case_shares_agency",
            vec![
                CaseShares::AgencyId,
                CaseShares::UnsharedAt,
                CaseShares::CaseId,
            ],
        ),
        ("ix_case_shares_case", vec![CaseShares::CaseId]),
    ] {
        let mut index = Index::create();
        index.name(name).table(CaseShares::Table);
        for c in cols {
            index.col(c);
        }
        m.create_index(index.to_owned()).await?;
    }
    Ok(())
}

/// The partner feed's positions.
async fn partner_feed(m: &SchemaManager<'_>) -> Result<(), DbErr> {
    // The partner feed: fed events get a position from a counter on the audit head row,
    // taken under that row's lock, so positions are in commit order with no gaps a reader
    // could skip past.
    m.alter_table(
        Table::alter()
            .table(CaseEvents::Table)
            .add_column(big_integer_null(CaseEvents::FeedSeq))
            .to_owned(),
    )
    .await?;
    m.create_index(
        Index::create()
            .name("ux_case_events_feed_seq")
            .table(CaseEvents::Table)
            .col(CaseEvents::FeedSeq)
            .unique()
            .to_owned(),
    )
    .await?;
    m.alter_table(
        Table::alter()
            .table(AuditHead::Table)
            .add_column(big_integer(AuditHead::FeedSeq).default(0))
            .to_owned(),
    )
    .await?;
    m.alter_table(
        Table::alter()
            .table(AuditLog::Table)
            .add_column(text_null(AuditLog::Disclosure))
            .to_owned(),
    )
    .await?;
    Ok(())
}

#[derive(DeriveIden)]
enum Agreements {
    Table,
    Id,
    JurisdictionId,
    Title,
    PartnerAgencyId,
    CaseTypes,
    Purposes,
    LawfulBasis,
    Ceiling,
    Fields,
    ValidFrom,
    ValidTo,
    ReviewDate,
    Status,
    Source,
    ConfigHash,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CaseShares {
    Table,
    Id,
    CaseId,
    AgencyId,
    AgreementId,
    Rule,
    Reason,
    SharedBy,
    SharedAt,
    UnsharedAt,
    UnsharedBy,
    UnshareReason,
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CaseEvents {
    Table,
    FeedSeq,
}

#[derive(DeriveIden)]
enum AuditHead {
    Table,
    FeedSeq,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Disclosure,
}
