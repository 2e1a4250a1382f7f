//! Reading the file, applying environment overrides, and reporting problems with file, line and key.

use std::fmt;
use std::path::{Path, PathBuf};

use junction_store::catalogue::Catalogue;
use toml_edit::Document;

use super::locate::{KeyPath, from_ignored, line_at, line_of};
use super::model::Config;
use super::validate::validate;

/// One problem, located.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, or `environment` for an override.
    pub file: String,
    pub line: Option<usize>,
    /// The key path, such as `case_types[2].fields[0].datatype`.
    pub key: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}: {}", self.file, line, self.key, self.message),
            None => write!(f, "{}: {}: {}", self.file, self.key, self.message),
        }
    }
}

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub Vec<Problem>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} problem(s) in the configuration:", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    pub catalogue: Catalogue,
    /// Each jurisdiction's routing rules and send methods.
    pub routing: super::routing::Routing,
    /// Purposes, classifications and agreements.
    pub sharing: super::sharing::Sharing,
    /// Every connector, its parameters parsed and secrets resolved once.
    pub connectors: Vec<super::connectors::ConnectorSpec>,
    /// The file it came from, if any.
    pub source: Option<PathBuf>,
}

impl LoadedConfig {
    /// The database URL: the override, the file's, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.config.database.url.clone().unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                self.config.server.data_dir.join("junction.db").display()
            )
        })
    }
}

/// Loads and checks `path`, then applies `JUNCTION_*` environment overrides.
pub fn load(path: &Path) -> Result<LoadedConfig, ConfigError> {
    let file = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|e| {
        ConfigError(vec![Problem {
            file: file.clone(),
            line: None,
            key: "-".into(),
            message: format!("cannot read: {e}"),
        }])
    })?;
    if let Err((at, message)) = check_nesting(&source) {
        return Err(ConfigError(vec![Problem {
            file,
            line: Some(line_at(&source, at)),
            key: "-".into(),
            message,
        }]));
    }
    let doc = Document::parse(source.as_str()).map_err(|e| {
        ConfigError(vec![Problem {
            file: file.clone(),
            line: e.span().map(|s| line_at(&source, s.start)),
            key: "-".into(),
            message: format!("not valid TOML: {}", e.message().trim()),
        }])
    })?;
    let mut unknown: Vec<KeyPath> = Vec::new();
    let deserializer =
        toml::Deserializer::parse(&source).map_err(|e| located_toml_error(&file, &source, &e))?;
    let config: Config =
        serde_ignored::deserialize(deserializer, |path| unknown.push(from_ignored(&path)))
            .map_err(|e| located_toml_error(&file, &source, &e))?;

    let mut problems: Vec<Problem> = unknown
        .iter()
        .map(|path| Problem {
            file: file.clone(),
            line: line_of(&source, &doc, path),
            key: path.to_string(),
            message: "unknown key".into(),
        })
        .collect();
    let config = apply_env(config, &mut problems);
    finish(config, Some((path, &source, &doc)), problems)
}

/// Deepest nesting of arrays and inline tables read. A configuration needs three or four;
/// the TOML parsers recurse per level, so a file nested thousands deep would overflow the stack.
const MAX_NESTING: usize = 32;

/// Refuses a file whose arrays and inline tables nest deeper than [`MAX_NESTING`], before any
/// parser sees it: the byte offset where it goes too deep, and why. Strings and comments are
/// skipped; the file's other mistakes are left for the parser to name.
fn check_nesting(source: &str) -> Result<(), (usize, String)> {
    let bytes = source.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        let rest = &bytes[i..];
        if rest.starts_with(b"\"\"\"") || rest.starts_with(b"'''") {
            let quote = &rest[..3];
            i = bytes[i + 3..]
                .windows(3)
                .position(|w| w == quote)
                .map_or(bytes.len(), |p| i + 3 + p + 3);
            continue;
        }
        match bytes[i] {
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote && bytes[i] != b'\n' {
                    if quote == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    let why = format!("arrays and tables nested deeper than {MAX_NESTING}");
                    return Err((i, why));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

/// The configuration with no file: built-in defaults and environment overrides only.
pub fn load_default() -> Result<LoadedConfig, ConfigError> {
    let mut problems = Vec::new();
    let config = apply_env(Config::default(), &mut problems);
    finish(config, None, problems)
}

fn finish(
    config: Config,
    located: Option<(&Path, &str, &Document<&str>)>,
    mut problems: Vec<Problem>,
) -> Result<LoadedConfig, ConfigError> {
    let super::validate::Validated {
        catalogue,
        routing,
        sharing,
        connectors,
        problems: found,
    } = validate(&config);
    for p in found {
        let (file, line) = match located {
            Some((path, source, doc)) => {
                (path.display().to_string(), line_of(source, doc, &p.path))
            }
            None => ("defaults".to_string(), None),
        };
        problems.push(Problem {
            file,
            line,
            key: p.path.to_string(),
            message: p.message,
        });
    }
    if problems.is_empty() {
        Ok(LoadedConfig {
            config,
            catalogue,
            routing,
            sharing,
            connectors,
            source: located.map(|(p, _, _)| p.to_path_buf()),
        })
    } else {
        problems.sort_by_key(|p| (p.file.clone(), p.line.unwrap_or(0)));
        Err(ConfigError(problems))
    }
}

fn located_toml_error(file: &str, source: &str, e: &toml::de::Error) -> ConfigError {
    ConfigError(vec![Problem {
        file: file.to_string(),
        line: e.span().map(|s| line_at(source, s.start)),
        key: "-".into(),
        message: e.message().trim().to_string(),
    }])
}

/// `JUNCTION_*` variables override the file. Secrets never come from here: they are `${VAR}`
/// references in the file.
fn apply_env(mut config: Config, problems: &mut Vec<Problem>) -> Config {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(v) = env("JUNCTION_LISTEN") {
        config.server.listen = v;
    }
    if let Some(v) = env("JUNCTION_DATA_DIR") {
        config.server.data_dir = PathBuf::from(v);
    }
    if let Some(v) = env("JUNCTION_DATABASE_URL") {
        config.database.url = Some(v);
    }
    if let Some(v) = env("JUNCTION_LOG_FORMAT") {
        config.telemetry.log_format = v;
    }
    if let Some(v) = env("JUNCTION_LOG") {
        config.telemetry.log_level = v;
    }
    if let Some(v) = env("JUNCTION_DEVELOPMENT") {
        match v.as_str() {
            "1" | "true" => config.server.development = true,
            "0" | "false" => config.server.development = false,
            _ => problems.push(Problem {
                file: "environment".into(),
                line: None,
                key: "JUNCTION_DEVELOPMENT".into(),
                message: "must be true, false, 1 or 0".into(),
            }),
        }
    }
    if let Some(v) = env("JUNCTION_WORKERS") {
        match v.as_str() {
            "1" | "true" => config.workers.enabled = true,
            "0" | "false" => config.workers.enabled = false,
            _ => problems.push(Problem {
                file: "environment".into(),
                line: None,
                key: "JUNCTION_WORKERS".into(),
                message: "must be true, false, 1 or 0".into(),
            }),
        }
    }
    config
}
