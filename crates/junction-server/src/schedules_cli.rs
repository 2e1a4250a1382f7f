//! `junction schedules`: what each schedule last did and when it runs next, and running one
//! now from the command line, as a manager does after a back-end came back.

use std::process::ExitCode;

use clap::Subcommand;
use junction_store::schedules;

use crate::config::LoadedConfig;

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// One line per schedule: name, last outcome, when it last finished, its counts or
    /// error, and its next run.
    List,
    /// Run a schedule now, in this process (claimed as any process claims it, so it never
    /// runs twice at once), and print how it went; exit 1 if it failed.
    Run {
        /// The schedule's name, e.g. `poll_updates:highways`.
        name: String,
    },
}

pub async fn run(loaded: &LoadedConfig, command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    let store = crate::app::open_store(loaded).await?;
    let scheduled = crate::workers::schedules(loaded)?;
    let declared: Vec<_> = scheduled.iter().map(|s| s.declared.clone()).collect();
    schedules::declare(&store, &declared).await?;
    let code = match command {
        ScheduleCommand::List => {
            for s in schedules::list(&store).await? {
                let last = s
                    .last_finished_at
                    .map_or_else(|| "never".to_string(), |t| t.to_rfc3339());
                let detail = match (&s.last_error, &s.last_counts) {
                    (Some(e), _) => e.clone(),
                    (None, Some(c)) => c.to_string(),
                    (None, None) => String::new(),
                };
                println!(
                    "{}\t{}\t{last}\t{detail}\tnext {}",
                    s.name,
                    s.last_outcome.as_deref().unwrap_or("-"),
                    s.next_run_at.to_rfc3339()
                );
            }
            ExitCode::SUCCESS
        }
        ScheduleCommand::Run { name } => {
            let Some(s) = scheduled.iter().find(|s| s.declared.name == name) else {
                let names: Vec<&str> = scheduled.iter().map(|s| s.declared.name.as_str()).collect();
                anyhow::bail!(
                    "`{name}` is not a schedule of this configuration (there are: {})",
                    names.join(", ")
                );
            };
            let actor = junction_domain::Actor::internal("cli");
            schedules::run_now(&store, &actor, &name).await?;
            let process = format!("cli-{}", std::process::id());
            if !junction_jobs::schedules::run_if_due(&store, &process, s).await? {
                anyhow::bail!(
                    "`{name}` did not run here: another process is running it, or its connector is paused"
                );
            }
            let done = schedules::get(&store, &name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("`{name}` vanished"))?;
            match (done.last_outcome.as_deref(), &done.last_error) {
                (Some("ok"), _) => {
                    println!(
                        "{name}: ok {}",
                        done.last_counts.map(|c| c.to_string()).unwrap_or_default()
                    );
                    ExitCode::SUCCESS
                }
                (_, error) => {
                    println!("{name}: failed: {}", error.as_deref().unwrap_or("unknown"));
                    ExitCode::FAILURE
                }
            }
        }
    };
    store.close().await?;
    Ok(code)
}
