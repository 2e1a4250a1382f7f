//! API keys for back-ends: a key bound to a connector speaks for that connector's back-end,
//! which pushes its updates on the cases it was sent (`POST servicerequestupdates`) and may do
//! nothing a front-end does.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0015_backend_keys"
    }
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    ConnectorId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .add_column(ColumnDef::new(ApiKeys::ConnectorId).string().null())
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(ApiKeys::Table)
                .drop_column(ApiKeys::ConnectorId)
                .to_owned(),
        )
        .await
    }
}
