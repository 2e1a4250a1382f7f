//! Each share remembers the feed position of its `shared` event, so a partner's subscription
//! carries only what happened to a case from the moment it was shared.

use sea_orm_migration::{prelude::*, schema::*};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0004_share_feed_position"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(CaseShares::Table)
                .add_column(big_integer_null(CaseShares::FeedSeq))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(CaseShares::Table)
                .drop_column(CaseShares::FeedSeq)
                .to_owned(),
        )
        .await
    }
}

#[derive(DeriveIden)]
enum CaseShares {
    Table,
    FeedSeq,
}
