//! Files that arrive with a case (a front-end's uploaded photos), stored with it in the same
//! transaction so nothing sent with a report is lost.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0005_attachments"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Attachments::Table)
                .col(big_pk_auto(Attachments::Id))
                .col(string(Attachments::CaseId))
                .col(string(Attachments::Part))
                .col(string(Attachments::FileName))
                .col(string(Attachments::ContentType))
                .col(big_integer(Attachments::Size))
                .col(string(Attachments::Sha256))
                .col(blob(Attachments::Data))
                .col(timestamp_with_time_zone(Attachments::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("ix_attachments_case")
                .table(Attachments::Table)
                .col(Attachments::CaseId)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Attachments::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Attachments {
    Table,
    Id,
    CaseId,
    Part,
    FileName,
    ContentType,
    Size,
    Sha256,
    Data,
    CreatedAt,
}
