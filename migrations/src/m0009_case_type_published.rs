//! Case types gain `published`: only a published type is listed, accepted and readable over
//! Open311. Existing types start unpublished; the configuration, applied at start-up, says
//! which are.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0009_case_type_published"
    }
}

#[derive(DeriveIden)]
enum CaseTypes {
    Table,
    Published,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(CaseTypes::Table)
                .add_column(
                    ColumnDef::new(CaseTypes::Published)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(CaseTypes::Table)
                .drop_column(CaseTypes::Published)
                .to_owned(),
        )
        .await
    }
}
