//! `junction check-connectors`: asks each configured connector's other side whether it is
//! there and answering, changing nothing there, as an operator does before going live or
//! after a council's system was upgraded.

use std::process::ExitCode;
use std::time::Duration;

use junction_connectors::Health;

use crate::config::LoadedConfig;

/// How long past its own timeout one check may run.
const MARGIN: Duration = Duration::from_secs(5);

/// Checks every connector at once and prints one line each: id, kind, target, what it can do,
/// and the outcome. Exit 4 when any is not healthy.
pub async fn check(loaded: &LoadedConfig) -> anyhow::Result<ExitCode> {
    let mut checks = tokio::task::JoinSet::new();
    for (i, spec) in loaded.connectors.iter().enumerate() {
        let spec = spec.clone();
        checks.spawn(async move {
            let line = match spec.build() {
                Err(why) => (
                    String::new(),
                    String::new(),
                    Health::Unhealthy(format!("could not be built: {why}")),
                ),
                Ok(caps) => {
                    let limit = Duration::from_secs(spec.params.timeout_secs()) + MARGIN;
                    let health = tokio::time::timeout(limit, caps.base.health_check())
                        .await
                        .unwrap_or_else(|_| {
                            Health::Unhealthy(format!("no answer within {}s", limit.as_secs()))
                        });
                    (caps.base.target(), caps.offered().join(","), health)
                }
            };
            (i, spec.id, spec.params.kind().as_str(), line)
        });
    }
    let mut results = checks.join_all().await;
    results.sort_by_key(|r| r.0);
    let mut healthy = true;
    for (_, id, kind, (target, offered, health)) in results {
        let (word, detail) = match health {
            Health::Healthy(d) => ("ok", d),
            Health::Unhealthy(d) => {
                healthy = false;
                ("FAILED", d)
            }
        };
        println!("{id}\t{kind}\t{target}\t{offered}\t{word}\t{detail}");
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(4)
    })
}
