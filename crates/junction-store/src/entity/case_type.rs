//! The `case_types` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "case_types")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub jurisdiction_id: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub group_name: Option<String>,
    /// JSON array of strings.
    pub keywords: String,
    pub agency_id: String,
    /// JSON array of field definitions.
    pub fields: String,
    pub active: bool,
    /// Listed, accepted and readable over Open311.
    pub published: bool,
    /// The longest description a case of this type takes, in characters.
    pub max_description_chars: i64,
    /// JSON object of status to its public notice (`text`, `external_status_code`).
    pub statuses: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
