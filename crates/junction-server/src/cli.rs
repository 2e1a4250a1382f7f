//! The `junction` command line.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use junction_domain::Role;

use crate::config::{self, LoadedConfig};

/// Junction: a regulatory integration hub.
#[derive(Debug, Parser)]
#[command(name = "junction", version, about)]
pub struct Cli {
    /// Configuration file. Default: `junction.toml` in the working directory when present.
    #[arg(long, global = true, env = "JUNCTION_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the API and workers in one process.
    Serve {
        /// Address to listen on (overrides the file and JUNCTION_LISTEN).
        #[arg(long)]
        listen: Option<String>,
        /// Serve the API only; `junction worker` processes on the same database deliver and
        /// run the schedules.
        #[arg(long)]
        no_workers: bool,
    },
    /// Deliver and run the schedules without the API: run several beside `junction serve
    /// --no-workers` on one PostgreSQL. Stops on SIGTERM or Ctrl-C.
    Worker,
    /// Apply pending database migrations and the configuration, then exit.
    Migrate,
    /// Check a configuration file and report every problem with file, line and key.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Ask every configured connector's other side whether it is there and answering,
    /// changing nothing there; exit 4 if any is not.
    CheckConnectors,
    /// Recurring work (update polls and their mop-ups): list, or run one now.
    Schedules {
        #[command(subcommand)]
        command: crate::schedules_cli::ScheduleCommand,
    },
    /// Print a bearer token the running server accepts (shared-secret setups only).
    Token {
        /// Role(s) to grant: admin, manager, officer, partner, system, auditor.
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The token's subject.
        #[arg(long, default_value = "cli")]
        subject: String,
        /// The agency the holder acts for.
        #[arg(long)]
        agency: Option<String>,
        /// Lifetime, e.g. 30m, 12h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: String,
    },
    /// Withdraw tokens before they expire: one token by its id, or every token a subject holds
    /// now. Running servers refuse them within `[auth] revocation_poll_secs` and close their
    /// subscriptions.
    RevokeToken {
        /// The token's `jti`.
        #[arg(long, conflicts_with = "subject", required_unless_present = "subject")]
        jti: Option<String>,
        /// Every token of this subject issued until now.
        #[arg(long)]
        subject: Option<String>,
        /// Why, for the audit log.
        #[arg(long)]
        reason: String,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Who was shown a case's personal data, when, under which agreement and for which
    /// purpose: what a subject access request needs. JSON lines on standard output.
    Disclosures {
        /// The case's reference or id.
        #[arg(long)]
        case: String,
    },
    /// Print the GraphQL schema (SDL) as served.
    Schema,
    /// API keys for Open311 clients (FixMyStreet and other front-ends).
    ApiKey {
        #[command(subcommand)]
        command: crate::api_keys_cli::ApiKeyCommand,
    },
    /// Run a simulated back-end for trying Junction end to end.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
    /// Dry-run a case through the routing rules and print the decision.
    Route {
        /// A JSON case: `{"case_type": "POT", "description": "..", "location": {..}, "fields": {..}}`.
        #[arg(long = "case")]
        case: PathBuf,
        /// The jurisdiction, when the configuration declares more than one.
        #[arg(long)]
        jurisdiction: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// An Open311 council back-end that issues references and can be told to misbehave
    /// (see `POST /_sim/behaviour`).
    Open311 {
        #[arg(long, default_value = "127.0.0.1:9311")]
        listen: String,
        /// Fraction of POSTs answered with HTTP 500.
        #[arg(long, default_value_t = 0.0)]
        fail_rate: f64,
        /// Milliseconds before every answer.
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
        /// Answer with tokens instead of ids.
        #[arg(long)]
        token_mode: bool,
        /// Seconds after which a request is `in_progress`, and `fixed`.
        #[arg(long, default_value_t = 60)]
        progress_after_secs: u64,
        #[arg(long, default_value_t = 300)]
        fixed_after_secs: u64,
        /// Keep one request per id attribute value, so a resend gets the first reference
        /// (most council systems do not: each POST is a new request).
        #[arg(long)]
        dedupe: bool,
        /// `GET requests` ignores filters it does not know, such as the id attribute.
        #[arg(long)]
        ignore_unknown_filters: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain and report the first record that does not verify.
    Verify {
        /// A checkpoint kept elsewhere (a checkpoint file, whose last line counts, or one JSON
        /// line): the log must still hold the record it vouches for, with the same hash.
        #[arg(long, value_name = "CHECKPOINT")]
        against: Option<String>,
    },
    /// Sign the chain's head now, print the checkpoint and write it where `[audit]` says.
    Checkpoint,
}

/// Loads the configuration the command line names, or the default one.
pub fn load_config(explicit: Option<&Path>) -> Result<LoadedConfig, config::ConfigError> {
    match explicit {
        Some(path) => config::load(path),
        None if Path::new("junction.toml").is_file() => config::load(Path::new("junction.toml")),
        None => config::load_default(),
    }
}

/// Runs the command line; the process exits with the returned code.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::CheckConfig { file } = &cli.command {
        return Ok(check_config(file));
    }
    if let Command::Sim { command } = &cli.command {
        return sim(command).await;
    }
    if let Command::Schema = &cli.command {
        print!("{}", junction_api::graphql::sdl());
        return Ok(ExitCode::SUCCESS);
    }
    let mut loaded = match load_config(cli.config.as_deref()) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            return Ok(ExitCode::from(2));
        }
    };
    crate::telemetry::init_logging(
        &loaded.config.telemetry.log_format,
        &loaded.config.telemetry.log_level,
    );
    match cli.command {
        Command::Serve { listen, no_workers } => {
            if let Some(listen) = listen {
                loaded.config.server.listen = listen;
            }
            if no_workers {
                loaded.config.workers.enabled = false;
            }
            let server = crate::app::start(loaded).await?;
            server.wait().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Migrate => {
            let store = crate::app::open_store(&loaded).await?;
            println!(
                "database at {} is migrated and configured",
                crate::app::redact_url(&loaded.database_url())
            );
            store.close().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Token {
            roles,
            subject,
            agency,
            ttl,
        } => token(&loaded, &roles, &subject, agency.as_deref(), &ttl),
        Command::Audit { command } => audit(&loaded, command).await,
        Command::RevokeToken {
            jti,
            subject,
            reason,
        } => revoke_token(&loaded, jti, subject, &reason).await,
        Command::ApiKey { command } => crate::api_keys_cli::run(&loaded, command).await,
        Command::Disclosures { case } => disclosures(&loaded, &case).await,
        Command::CheckConnectors => crate::connectors_cli::check(&loaded).await,
        Command::Worker => {
            loaded.config.workers.enabled = true;
            crate::workers::run_alone(&loaded).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Schedules { command } => crate::schedules_cli::run(&loaded, command).await,
        Command::Route { case, jurisdiction } => {
            crate::route_cli::dry_run(&loaded, &case, jurisdiction.as_deref())
        }
        Command::CheckConfig { .. } | Command::Schema | Command::Sim { .. } => {
            unreachable!("handled above")
        }
    }
}

/// `junction check-config FILE`: 0 when the file loads, 2 with every problem found.
fn check_config(file: &std::path::Path) -> ExitCode {
    match config::load(file) {
        Ok(loaded) => {
            let c = &loaded.catalogue;
            println!(
                "{}: ok ({} jurisdiction(s), {} agency(ies), {} case type(s), {} connector(s))",
                file.display(),
                c.jurisdictions.len(),
                c.agencies.len(),
                c.case_types.len(),
                c.connectors.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprint!("{e}");
            ExitCode::from(2)
        }
    }
}

/// `junction sim …`: a simulated back-end, until stopped.
async fn sim(command: &SimCommand) -> anyhow::Result<ExitCode> {
    let SimCommand::Open311 {
        listen,
        fail_rate,
        delay_ms,
        token_mode,
        progress_after_secs,
        fixed_after_secs,
        dedupe,
        ignore_unknown_filters,
    } = command;
    crate::telemetry::init_logging("text", "info");
    let sim = crate::sim::Simulator::new(crate::sim::Behaviour {
        fail_rate: *fail_rate,
        delay_ms: *delay_ms,
        token_mode: *token_mode,
        progress_after_secs: Some(*progress_after_secs),
        fixed_after_secs: Some(*fixed_after_secs),
        dedupe: *dedupe,
        ignore_unknown_filters: *ignore_unknown_filters,
        ..Default::default()
    });
    let addr = listen.parse().context("--listen")?;
    let (addr, task) = sim.serve(addr).await?;
    eprintln!(
        "simulated Open311 back-end at http://{addr}/open311/v2/ (behaviour: POST /_sim/behaviour)"
    );
    task.await?;
    Ok(ExitCode::SUCCESS)
}

/// `junction token`: prints a token signed with the configured key.
fn token(
    loaded: &LoadedConfig,
    roles: &[String],
    subject: &str,
    agency: Option<&str>,
    ttl: &str,
) -> anyhow::Result<ExitCode> {
    let roles = roles
        .iter()
        .map(|r| {
            Role::parse(r).ok_or_else(|| {
                anyhow::anyhow!(
                    "unknown role `{r}`: one of admin, manager, officer, partner, system, auditor"
                )
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let ttl = parse_duration(ttl).context("--ttl")?;
    let auth = crate::app::authenticator(loaded)?;
    let token = auth
        .issue(subject, agency, &roles, ttl)
        .map_err(anyhow::Error::msg)?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// `junction revoke-token`: a token by id, or every token a subject holds now.
async fn revoke_token(
    loaded: &LoadedConfig,
    jti: Option<String>,
    subject: Option<String>,
    reason: &str,
) -> anyhow::Result<ExitCode> {
    use junction_store::revocations::{self, Revoked};
    let store = junction_store::Store::connect(&loaded.database_url()).await?;
    let revoked = match (jti, subject) {
        (Some(jti), _) => Revoked::Token(jti),
        (None, Some(subject)) => Revoked::Subject {
            subject,
            issued_before: chrono::Utc::now(),
        },
        (None, None) => {
            anyhow::bail!("name a token with --jti or a subject with --subject")
        }
    };
    let actor = junction_domain::Actor::internal("cli");
    let r = revocations::revoke(&store, &actor, revoked, reason).await?;
    println!("revoked ({}): {:?}", r.id, r.revoked);
    Ok(ExitCode::SUCCESS)
}

/// `junction disclosures CASE`: every disclosure of the case's personal data, one JSON line each.
async fn disclosures(loaded: &LoadedConfig, case: &str) -> anyhow::Result<ExitCode> {
    let store = junction_store::Store::connect(&loaded.database_url()).await?;
    let Some(found) = junction_store::cases::get(&store, case).await? else {
        eprintln!("no case with reference or id `{case}`");
        return Ok(ExitCode::FAILURE);
    };
    let records = junction_store::sharing::disclosures(&store, &found.id).await?;
    for r in &records {
        let line = serde_json::json!({
            "at": r.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "actor": r.actor,
            "partner_agency": r.disclosure.partner_agency,
            "case_reference": r.disclosure.case_reference,
            "agreement": r.disclosure.agreement_id,
            "purpose": r.disclosure.purpose,
            "fields": r.disclosure.fields,
            "channel": r.disclosure.channel,
            "request_id": r.request_id,
            "audit_seq": r.seq,
        });
        println!("{line}");
    }
    eprintln!(
        "{} disclosure(s) of case {}",
        records.len(),
        found.reference
    );
    Ok(ExitCode::SUCCESS)
}

/// `90s`, `30m`, `12h`, `7d`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .with_context(|| format!("`{s}` is not a duration such as 30m, 12h or 7d"))?;
    let secs = match unit {
        "s" => n,
        "m" | "" => n * 60,
        "h" => n * 3_600,
        "d" => n * 86_400,
        _ => anyhow::bail!("`{s}` is not a duration such as 30m, 12h or 7d"),
    };
    anyhow::ensure!(
        secs > 0 && secs <= 366 * 86_400,
        "a token lives between 1 second and a year"
    );
    Ok(Duration::from_secs(secs))
}

async fn audit(loaded: &LoadedConfig, command: AuditCommand) -> anyhow::Result<ExitCode> {
    let store = junction_store::Store::connect(&loaded.database_url()).await?;
    let against = match command {
        AuditCommand::Checkpoint => {
            let checkpoint = crate::checkpoints::Witness::new(loaded)?
                .take(&store)
                .await?;
            println!("{}", checkpoint.to_line());
            return Ok(ExitCode::SUCCESS);
        }
        AuditCommand::Verify { against } => against,
    };
    let report = match &against {
        None => junction_store::audit::verify(&store).await?,
        Some(source) => {
            let checkpoint = crate::checkpoints::read(source)?;
            let key = crate::checkpoints::existing_key(loaded)?;
            junction_store::audit::verify_against(&store, &checkpoint, &key).await?
        }
    };
    match report.first_bad {
        None => {
            let against = if against.is_some() {
                ", and the checkpoint's record is there"
            } else {
                ""
            };
            println!(
                "audit chain ok: {} record(s) verified{against}",
                report.checked
            );
            Ok(ExitCode::SUCCESS)
        }
        Some((seq, why)) => {
            eprintln!(
                "audit chain broken at record {seq}: {why} ({} record(s) before it verified)",
                report.checked
            );
            Ok(ExitCode::from(3))
        }
    }
}
