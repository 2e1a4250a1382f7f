//! Token revocations: a token withdrawn before it expires, by its id (`jti`), or every token
//! of a subject issued before a moment.

use sea_orm_migration::{prelude::*, schema::big_pk_auto};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0011_token_revocations"
    }
}

#[derive(DeriveIden)]
enum TokenRevocations {
    Table,
    Id,
    Jti,
    Subject,
    IssuedBefore,
    Reason,
    RevokedBy,
    RevokedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(TokenRevocations::Table)
                .col(big_pk_auto(TokenRevocations::Id))
                .col(ColumnDef::new(TokenRevocations::Jti).string())
                .col(ColumnDef::new(TokenRevocations::Subject).string())
                .col(ColumnDef::new(TokenRevocations::IssuedBefore).timestamp_with_time_zone())
                .col(ColumnDef::new(TokenRevocations::Reason).string().not_null())
                .col(
                    ColumnDef::new(TokenRevocations::RevokedBy)
                        .string()
                        .not_null(),
                )
                .col(
                    ColumnDef::new(TokenRevocations::RevokedAt)
                        .timestamp_with_time_zone()
                        .not_null(),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(TokenRevocations::Table).to_owned())
            .await
    }
}
