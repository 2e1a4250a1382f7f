//! The `agreements` table: data sharing agreements.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "agreements")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub jurisdiction_id: String,
    pub title: String,
    pub partner_agency_id: String,
    /// JSON list of case type codes.
    pub case_types: String,
    /// JSON list of purposes.
    pub purposes: String,
    pub lawful_basis: String,
    pub ceiling: String,
    /// JSON list of attribute paths, or null for "everything up to the ceiling".
    pub fields: Option<String>,
    pub valid_from: ChronoDateTimeUtc,
    pub valid_to: Option<ChronoDateTimeUtc>,
    /// `YYYY-MM-DD`.
    pub review_date: Option<String>,
    pub status: String,
    /// `config` (declared in the configuration file) or `api` (made over GraphQL).
    pub source: String,
    /// For `config` agreements: a hash of what the file last declared, so a restart re-applies
    /// the file only when it changed and keeps a suspension made at run time otherwise.
    pub config_hash: Option<String>,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
