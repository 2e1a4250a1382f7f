//! Indexes for feed placeholders (`docs/adr/0008`): a partial index holding only the events
//! that wait for a position (so each audit append finds its transaction's few at once, on
//! any planner statistics), and one on `case_shares.feed_seq`, where a share's placeholder is
//! replaced.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0010_feed_placeholder_indexes"
    }
}

#[derive(DeriveIden)]
enum CaseShares {
    Table,
    FeedSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX ix_case_events_waiting ON case_events (id) WHERE feed_seq < 0",
            )
            .await?;
        m.create_index(
            Index::create()
                .name("ix_case_shares_feed_seq")
                .table(CaseShares::Table)
                .col(CaseShares::FeedSeq)
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX ix_case_events_waiting")
            .await?;
        m.drop_index(
            Index::drop()
                .name("ix_case_shares_feed_seq")
                .table(CaseShares::Table)
                .to_owned(),
        )
        .await
    }
}
