//! Junction's configuration file: what it may say, and how it is loaded.
//!
//! One TOML file declares the server, the database, authentication, limits, and the catalogue
//! (jurisdictions, agencies, case types, connectors). Loading reports every problem at once,
//! each with file, line and key; unknown keys are errors; secrets are `${VAR}` references to
//! the environment and never appear in the file, the database or the logs.

mod case_types;
mod connectors;
mod load;
mod locate;
mod model;
mod routing;
mod secret;
mod settings;
mod sharing;
mod updates;
mod validate;

pub use connectors::ConnectorSpec;
pub use load::{ConfigError, LoadedConfig, Problem, load, load_default};
pub use model::*;
pub use routing::Routing;
pub use secret::{SecretRef, SecretValue};
pub use sharing::Sharing;
pub use updates::UpdatesConfig;
