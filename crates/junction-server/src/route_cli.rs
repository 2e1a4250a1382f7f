//! `junction route`: a dry run of the routing rules on a sample case, with no database.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use junction_domain::{Case, Location, NewCase, Submitter};
use serde::Deserialize;
use serde_json::Value;

use crate::config::LoadedConfig;

/// A sample case as the command reads it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SampleCase {
    case_type: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    location: Option<Location>,
    #[serde(default)]
    fields: BTreeMap<String, Value>,
}

pub fn dry_run(
    loaded: &LoadedConfig,
    file: &Path,
    jurisdiction: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let sample: SampleCase = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a sample case", file.display()))?;
    let jurisdictions = &loaded.catalogue.jurisdictions;
    let jurisdiction = match (jurisdiction, jurisdictions.as_slice()) {
        (Some(j), _) => j.to_string(),
        (None, [only]) => only.id.clone(),
        (None, _) => {
            anyhow::bail!("--jurisdiction is required: the configuration declares several")
        }
    };
    let case_type = loaded
        .catalogue
        .case_types
        .iter()
        .find(|t| t.jurisdiction_id == jurisdiction && t.code == sample.case_type)
        .with_context(|| {
            format!(
                "`{}` is not a case type of `{jurisdiction}`",
                sample.case_type
            )
        })?;
    let new = NewCase {
        case_type_code: sample.case_type.clone(),
        description: sample.description,
        location: sample.location.unwrap_or(Location {
            address: Some("(dry run)".into()),
            ..Location::default()
        }),
        submitter: Submitter::default(),
        fields: sample.fields,
        source_ref: None,
        media_urls: Vec::new(),
    };
    let new = match new.validate(case_type) {
        Ok(n) => n,
        Err(errors) => {
            eprintln!("the sample case is not valid for `{}`:", case_type.code);
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return Ok(ExitCode::from(2));
        }
    };
    let case = Case::open(
        "dry-run".into(),
        "dry-run".into(),
        &jurisdiction,
        &case_type.agency_id,
        new,
        "dry-run",
        chrono::Utc::now(),
    );
    let table = loaded
        .routing
        .get(&jurisdiction)
        .cloned()
        .unwrap_or_default();
    let route = table.route(&case, &case_type.agency_id);
    println!("{}", serde_json::to_string_pretty(&route)?);
    Ok(ExitCode::SUCCESS)
}
