//! The `held_updates` table: back-end updates that arrived before the reference of their case.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "held_updates")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub connector_id: String,
    pub update_id: String,
    pub external_ref: String,
    pub our_id: Option<String>,
    /// The update as received (JSON).
    pub body: String,
    /// What it means here, decided when it arrived: a status, or `note`.
    pub mapped: String,
    pub received_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
