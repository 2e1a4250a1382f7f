//! The caller and the catalogue as GraphQL reads them: jurisdictions, agencies and case
//! types with their fields.

use async_graphql::{ID, SimpleObject};
use junction_domain as d;

use super::*;

/// The caller, as its token describes it.
#[derive(SimpleObject)]
pub struct Me {
    pub subject: String,
    pub agency: Option<String>,
    pub roles: Vec<Role>,
}

#[derive(SimpleObject)]
pub struct Jurisdiction {
    pub id: ID,
    pub name: String,
}

impl From<d::Jurisdiction> for Jurisdiction {
    fn from(j: d::Jurisdiction) -> Self {
        Jurisdiction {
            id: ID(j.id),
            name: j.name,
        }
    }
}

#[derive(SimpleObject)]
pub struct Agency {
    pub id: ID,
    pub jurisdiction: String,
    pub name: String,
    pub kind: AgencyKind,
    /// Where cases go when the agency has no integration.
    pub email: Option<String>,
}

impl From<d::Agency> for Agency {
    fn from(a: d::Agency) -> Self {
        Agency {
            id: ID(a.id),
            jurisdiction: a.jurisdiction_id,
            name: a.name,
            kind: a.kind.into(),
            email: a.email,
        }
    }
}

#[derive(SimpleObject)]
pub struct ListValue {
    pub key: String,
    pub name: String,
}

/// One typed field of a case type (an Open311 attribute).
#[derive(SimpleObject)]
pub struct Field {
    pub code: String,
    pub description: String,
    pub datatype: Datatype,
    pub required: bool,
    pub order: u32,
    pub classification: Classification,
    pub values: Vec<ListValue>,
    pub datatype_description: Option<String>,
}

/// A kind of case (an Open311 service).
#[derive(SimpleObject)]
pub struct CaseType {
    pub jurisdiction: String,
    pub code: String,
    pub name: String,
    pub description: String,
    pub group: Option<String>,
    pub keywords: Vec<String>,
    pub agency: String,
    pub active: bool,
    /// Listed, accepted and readable over Open311.
    pub published: bool,
    pub fields: Vec<Field>,
}

impl From<d::CaseType> for CaseType {
    fn from(c: d::CaseType) -> Self {
        CaseType {
            jurisdiction: c.jurisdiction_id,
            code: c.code,
            name: c.name,
            description: c.description,
            group: c.group,
            keywords: c.keywords,
            agency: c.agency_id,
            active: c.active,
            published: c.published,
            fields: c
                .fields
                .into_iter()
                .map(|f| Field {
                    code: f.code,
                    description: f.description,
                    datatype: f.datatype.into(),
                    required: f.required,
                    order: f.order,
                    classification: f.classification.into(),
                    values: f
                        .values
                        .into_iter()
                        .map(|v| ListValue {
                            key: v.key,
                            name: v.name,
                        })
                        .collect(),
                    datatype_description: f.datatype_description,
                })
                .collect(),
        }
    }
}
