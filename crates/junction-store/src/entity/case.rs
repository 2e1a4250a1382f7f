//! The `cases` table.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "cases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub reference: String,
    pub jurisdiction_id: String,
    pub case_type_id: String,
    pub agency_id: String,
    pub status: String,
    pub description: String,
    pub lat: Option<f64>,
    pub long: Option<f64>,
    pub uprn: Option<String>,
    pub address: Option<String>,
    pub submitter_name: Option<String>,
    pub submitter_email: Option<String>,
    pub submitter_phone: Option<String>,
    /// JSON object of field code to value.
    pub fields: String,
    pub created_by: String,
    pub created_at: ChronoDateTimeUtc,
    pub updated_at: ChronoDateTimeUtc,
    /// When the status last changed, by the changer's clock.
    pub status_at: Option<ChronoDateTimeUtc>,
    pub version: i64,
    /// JSON routing decision.
    pub route: Option<String>,
    /// The front-end's own id for the case.
    pub source_ref: Option<String>,
    /// The creating client's idempotency key, unique per client (`created_by`).
    pub idempotency_key: Option<String>,
    /// JSON array of the front-end's media URLs.
    pub media_urls: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
