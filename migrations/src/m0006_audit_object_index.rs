//! The audit log's object index holds only records about an object (state changes and
//! disclosures). Operation records, most of the log, have no object: indexing their empty
//! pair cost every request a B-tree insert and served no query, since a filter on an object
//! always names one.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m0006_audit_object_index"
    }
}

const NAME: &str = "ix_audit_object";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    /// In one transaction on both databases: the index is replaced, or left as it was. (On
    /// SQLite the migrator would otherwise run each statement on whichever pooled connection
    /// is free, and one that has not yet seen the drop refuses the create.)
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace(m, true).await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        replace(m, false).await
    }
}

/// Replaces the index with the partial one (`partial`) or the full one.
async fn replace(m: &SchemaManager<'_>, partial: bool) -> Result<(), DbErr> {
    m.drop_index(Index::drop().name(NAME).table(AuditLog::Table).to_owned())
        .await?;
    let mut create = Index::create()
        .name(NAME)
        .table(AuditLog::Table)
        .col(AuditLog::ObjectType)
        .col(AuditLog::ObjectId)
        .to_owned();
    if partial {
        create.and_where(Expr::col(AuditLog::ObjectType).is_not_null());
    }
    m.create_index(create).await
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    ObjectType,
    ObjectId,
}
