//! The `case_updates` table: status changes and comments, from back-ends and front-ends.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "case_updates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub case_id: String,
    pub source: String,
    pub source_update_id: Option<String>,
    pub status: Option<String>,
    /// The case's status once the update was recorded (absent on updates older than the
    /// column, where the case's present status stands in).
    pub case_status: Option<String>,
    pub external_status_code: Option<String>,
    pub description: String,
    /// JSON array of URLs.
    pub media_urls: String,
    pub updated_at: ChronoDateTimeUtc,
    pub created_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
