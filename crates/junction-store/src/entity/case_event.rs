//! The `case_events` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "case_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub case_id: String,
    pub kind: String,
    pub actor: String,
    pub at: ChronoDateTimeUtc,
    /// JSON object.
    pub data: String,
    /// Position in the partner feed, for fed kinds; commit-ordered.
    pub feed_seq: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
