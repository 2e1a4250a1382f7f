//! `junction api-key`: keys for Open311 clients (FixMyStreet and other front-ends), made,
//! listed and revoked from the command line.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::LoadedConfig;

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key and print it. Only its hash is stored: this is the only time it is shown.
    Create {
        /// The client's name, e.g. `fixmystreet`; recorded as the actor of its calls.
        name: String,
        /// Limit the key to one jurisdiction.
        #[arg(long, conflicts_with = "connector")]
        jurisdiction: Option<String>,
        /// Make the key a back-end's: it may only push the updates of this connector's
        /// back-end (`POST servicerequestupdates`), on the cases the connector was sent.
        #[arg(long)]
        connector: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id or name.
    Revoke { name_or_id: String },
}

pub async fn run(loaded: &LoadedConfig, command: ApiKeyCommand) -> anyhow::Result<ExitCode> {
    let store = crate::app::open_store(loaded).await?;
    let actor = junction_domain::Actor::internal("cli");
    match command {
        ApiKeyCommand::Create {
            name,
            jurisdiction,
            connector,
        } => {
            if let Some(j) = &jurisdiction {
                anyhow::ensure!(
                    loaded.catalogue.jurisdictions.iter().any(|x| &x.id == j),
                    "`{j}` is not a jurisdiction in the configuration"
                );
            }
            let (record, key) = match &connector {
                Some(c) => {
                    anyhow::ensure!(
                        loaded.connectors.iter().any(|x| &x.id == c),
                        "`{c}` is not a connector in the configuration"
                    );
                    junction_store::api_keys::create_for_connector(&store, &actor, &name, c).await?
                }
                None => {
                    junction_store::api_keys::create(&store, &actor, &name, jurisdiction.as_deref())
                        .await?
                }
            };
            eprintln!(
                "api key `{}` ({}) created; store it now, it is not shown again:",
                record.name, record.id
            );
            println!("{key}");
        }
        ApiKeyCommand::List => {
            for k in junction_store::api_keys::list(&store).await? {
                println!(
                    "{}\t{}\t{}\t{}{}",
                    k.id,
                    k.name,
                    k.jurisdiction_id.as_deref().unwrap_or("*"),
                    k.created_at.format("%Y-%m-%dT%H:%M:%SZ"),
                    if k.revoked_at.is_some() {
                        "\trevoked"
                    } else {
                        ""
                    }
                );
            }
        }
        ApiKeyCommand::Revoke { name_or_id } => {
            if !junction_store::api_keys::revoke(&store, &actor, &name_or_id).await? {
                eprintln!("no live key `{name_or_id}`");
                return Ok(ExitCode::FAILURE);
            }
            println!("revoked `{name_or_id}`");
        }
    }
    store.close().await?;
    Ok(ExitCode::SUCCESS)
}
