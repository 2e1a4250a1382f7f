//! The `token_revocations` table: tokens withdrawn before they expire.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "token_revocations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub jti: Option<String>,
    pub subject: Option<String>,
    pub issued_before: Option<ChronoDateTimeUtc>,
    pub reason: String,
    pub revoked_by: String,
    pub revoked_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
