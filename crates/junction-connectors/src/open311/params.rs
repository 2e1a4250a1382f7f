//! An Open311 connector's parameters: the endpoint, credentials, the id attribute, and what it
//! can prove about an unanswered attempt (`lookup_by_id`, `dedupes_on_id`), and how its update
//! list pages.

use serde::{Deserialize, Serialize};

use crate::params::default_timeout;

/// Sends cases to an Open311 GeoReport v2 back-end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Open311Params {
    /// Base URL, e.g. `https://council.example/open311/v2/`.
    pub endpoint: String,
    /// `${VAR}` reference.
    pub api_key: String,
    pub jurisdiction_id: Option<String>,
    /// The attribute our case id is sent under (`fixmystreet_id` for servers that expect it).
    #[serde(default = "default_id_attribute")]
    pub id_attribute: String,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Junction case type code to the back-end's service code, where they differ.
    #[serde(default)]
    pub service_codes: std::collections::BTreeMap<String, String>,
    /// After an attempt that got no answer, ask `GET requests.xml?<id_attribute>=<case id>`
    /// (with `start_date`/`end_date` around the attempts) whether the back-end holds the case
    /// before anything is sent again. A request counts as ours only when it carries the id
    /// attribute (as an element of that name, or in `<attributes>`) with exactly our case id,
    /// and exactly one does; only an empty list proves it did not arrive; anything else is
    /// inconclusive, asked again later, then parked for a person.
    #[serde(default)]
    pub lookup_by_id: bool,
    /// The back-end promises to keep one request per id attribute value: a resend of the same
    /// case gets the same reference and creates nothing. Set it only when the council's system
    /// really does this; with it, an unanswered attempt is simply sent again.
    #[serde(default)]
    pub dedupes_on_id: bool,

    /// Upload the files that came with the case as multipart parts (`photo1..N`), as
    /// FixMyStreet does with `upload_files`, for back-ends that cannot fetch a `media_url`.
    #[serde(default)]
    pub upload_files: bool,
    /// The back-end's documented limit on a description, in characters. A longer description
    /// is shortened to fit (ending in `…`) and the case's history says so; without a limit the
    /// description goes whole.
    #[serde(default)]
    pub max_description_chars: Option<usize>,
    /// For back-ends that page `GET servicerequestupdates`: `page` (from 1) and `page_size` are
    /// sent, and pages read until one lists fewer than `page_size`. Without it, one answer is
    /// taken as the whole window.
    #[serde(default)]
    pub updates_paging: Option<UpdatesPaging>,
}

/// How a back-end pages its update list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdatesPaging {
    pub page_size: usize,
}

fn default_id_attribute() -> String {
    "junction_id".into()
}

impl crate::KindParams for Open311Params {
    fn timeout_secs(&self) -> u64 {
        self.timeout_secs
    }

    fn secret_refs(&self) -> Vec<(&'static str, &str)> {
        vec![("api_key", self.api_key.as_str())]
    }

    fn check(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        if self.max_description_chars == Some(0) {
            problems.push(("max_description_chars", "must be greater than 0".into()));
        }
        if !crate::kind::is_http_url(&self.endpoint) {
            problems.push(("endpoint", "must be an http:// or https:// URL".into()));
        }
        if self
            .updates_paging
            .as_ref()
            .is_some_and(|p| p.page_size == 0)
        {
            problems.push(("updates_paging", "page_size must be greater than 0".into()));
        }
        if self.id_attribute.trim().is_empty() {
            problems.push(("id_attribute", "must not be empty".into()));
        }
        problems
    }

    fn build(
        &self,
        secret: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<crate::Capabilities, String> {
        let connector =
            std::sync::Arc::new(super::Open311::new(self.clone(), secret(&self.api_key)?)?);
        let mut caps = crate::Capabilities::of(connector.clone());
        caps.deliver_case = Some(connector.clone());
        caps.poll_updates = Some(connector);
        Ok(caps)
    }
}
