//! What a drop-in Open311 endpoint keeps: a case's photo URLs; an index on when cases last
//! changed (readers ask for cases updated in a window); the status a case really took
//! after each update (so the update feed never contradicts the case); and, per case type, the
//! longest description it takes and the public text (and external code) of each status.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0013_open311_dropin"
    }
}

#[derive(DeriveIden)]
enum Cases {
    Table,
    MediaUrls,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum CaseUpdates {
    Table,
    Status,
    CaseStatus,
    Source,
}

#[derive(DeriveIden)]
enum CaseTypes {
    Table,
    MaxDescriptionChars,
    Statuses,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite alters one column per statement.
        m.alter_table(
            Table::alter()
                .table(Cases::Table)
                .add_column(
                    ColumnDef::new(Cases::MediaUrls)
                        .text()
                        .not_null()
                        .default("[]"),
                )
                .to_owned(),
        )
        .await?;
        // Open311 readers ask for the cases changed in a window.
        m.create_index(
            Index::create()
                .name("ix_cases_updated_at")
                .table(Cases::Table)
                .col(Cases::UpdatedAt)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(CaseUpdates::Table)
                .add_column(ColumnDef::new(CaseUpdates::CaseStatus).string().null())
                .to_owned(),
        )
        .await?;
        // Junction's own status changes always moved the case; what other sources' older
        // updates did is not known, and the feed shows the case's status for them.
        m.exec_stmt(
            Query::update()
                .table(CaseUpdates::Table)
                .value(CaseUpdates::CaseStatus, Expr::col(CaseUpdates::Status))
                .and_where(Expr::col(CaseUpdates::Source).eq("junction"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(CaseTypes::Table)
                .add_column(
                    ColumnDef::new(CaseTypes::MaxDescriptionChars)
                        .big_integer()
                        .not_null()
                        .default(20_000),
                )
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(CaseTypes::Table)
                .add_column(
                    ColumnDef::new(CaseTypes::Statuses)
                        .text()
                        .not_null()
                        .default("{}"),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_index(Index::drop().name("ix_cases_updated_at").to_owned())
            .await?;
        for (table, column) in [
            (Cases::Table.into_iden(), Cases::MediaUrls.into_iden()),
            (
                CaseUpdates::Table.into_iden(),
                CaseUpdates::CaseStatus.into_iden(),
            ),
            (
                CaseTypes::Table.into_iden(),
                CaseTypes::MaxDescriptionChars.into_iden(),
            ),
            (
                CaseTypes::Table.into_iden(),
                CaseTypes::Statuses.into_iden(),
            ),
        ] {
            m.alter_table(Table::alter().table(table).drop_column(column).to_owned())
                .await?;
        }
        Ok(())
    }
}
