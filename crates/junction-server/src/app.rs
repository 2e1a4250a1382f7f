//! Assembling Junction from a loaded configuration: store, catalogue, authentication, audit
//! writer and router, and running it until told to stop.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use jsonwebtoken::Algorithm;
use junction_api::open311::Open311State;
use junction_api::{ApiState, Authenticator, KeySource, Limits};
use junction_api::{Intake, NoWaker};
use junction_domain::Actor;
use junction_store::Store;
use junction_store::audit::AuditWriter;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::config::LoadedConfig;
use crate::{health, request_id, secret_file};

/// A built Junction, ready to serve.
pub struct App {
    pub store: Store,
    pub router: Router,
    audit_task: JoinHandle<()>,
    workers: crate::workers::Workers,
    /// Set when shutdown starts, so long-lived connections (WebSockets) end.
    closing: tokio::sync::watch::Sender<bool>,
}

/// Builds the token verifier the configuration describes.
pub fn authenticator(loaded: &LoadedConfig) -> anyhow::Result<Authenticator> {
    let auth = &loaded.config.auth;
    let algorithms = auth
        .algorithms
        .iter()
        .map(|a| {
            a.parse::<Algorithm>()
                .map_err(|_| anyhow::anyhow!("unknown algorithm `{a}`"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let source = match (&auth.jwks_file, &auth.secret) {
        (Some(file), _) => KeySource::Jwks(
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?,
        ),
        (None, Some(secret)) => KeySource::SharedSecret(
            secret
                .resolve()
                .map_err(anyhow::Error::msg)?
                .expose()
                .as_bytes()
                .to_vec(),
        ),
        (None, None) => {
            KeySource::SharedSecret(secret_file::load_or_create(&loaded.config.server.data_dir)?)
        }
    };
    Ok(
        Authenticator::new(source, algorithms, &auth.issuer, &auth.audience)
            .map_err(anyhow::Error::msg)?
            .with_max_lifetime(auth.max_token_lifetime_secs),
    )
}

/// Reloads the revocation list every `every`, so a token revoked by any process (or the CLI)
/// is refused here within that time, and open subscriptions holding it are closed; until the
/// server starts closing.
fn spawn_revocation_refresh(
    store: Store,
    revocations: Arc<junction_api::revocation::Revocations>,
    every: Duration,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = closing.changed() => return,
            }
            if let Err(e) = revocations.refresh(&store).await {
                tracing::warn!(error = %e, "reloading token revocations failed");
            }
        }
    });
}

/// Limits for the API, from the configuration.
pub fn limits(loaded: &LoadedConfig) -> Limits {
    let l = &loaded.config.limits;
    Limits {
        max_body_bytes: l.max_body_bytes,
        max_depth: l.max_depth,
        max_complexity: l.max_complexity,
        max_page_size: l.max_page_size,
        max_query_secs: l.max_query_secs,
        development: loaded.config.server.development,
    }
}

/// Opens the database, migrates it, and applies the configuration's catalogue.
pub async fn open_store(loaded: &LoadedConfig) -> anyhow::Result<Store> {
    let url = loaded.database_url();
    if url.starts_with("sqlite:") {
        secret_file::create_private_dir(&loaded.config.server.data_dir)
            .with_context(|| format!("creating {}", loaded.config.server.data_dir.display()))?;
    }
    let store = Store::connect(&url)
        .await
        .with_context(|| format!("connecting to {}", redact_url(&url)))?;
    store.migrate().await.context("migrating the database")?;
    let report =
        junction_store::catalogue::apply(&store, &Actor::internal("config"), &loaded.catalogue)
            .await
            .context("applying the configuration")?;
    if !report.is_empty() {
        tracing::info!(created = ?report.created, updated = ?report.updated, removed = ?report.removed, "configuration applied");
    }
    let agreements = junction_store::sharing::apply_config(
        &store,
        &Actor::internal("config"),
        &loaded.sharing.agreements,
    )
    .await
    .context("applying the configuration's agreements")?;
    if !agreements.is_empty() {
        tracing::info!(changes = ?agreements, "agreements applied");
    }
    Ok(store)
}

impl App {
    pub async fn build(loaded: &LoadedConfig) -> anyhow::Result<App> {
        crate::telemetry::init_metrics();
        let store = open_store(loaded).await?;
        let revocations = Arc::new(junction_api::revocation::Revocations::default());
        revocations
            .refresh(&store)
            .await
            .context("loading token revocations")?;
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        spawn_revocation_refresh(
            store.clone(),
            revocations.clone(),
            Duration::from_secs(loaded.config.auth.revocation_poll_secs),
            closing.subscribe(),
        );
        let auth = Arc::new(authenticator(loaded)?.with_revocations(revocations));
        let limits = limits(loaded);
        let (audit, audit_task) = AuditWriter::start(store.clone());
        let (runner, workers) = crate::workers::start(loaded, &store).await?;
        let waker: Arc<dyn junction_api::DeliveryWaker> = if workers.0.is_empty() {
            Arc::new(NoWaker)
        } else {
            Arc::new(crate::workers::RunnerWaker(runner))
        };
        let intake = Intake::new(store.clone(), Arc::new(loaded.routing.clone()), waker);
        let (feed, _feed_task) = junction_api::FeedHub::start(store.clone());
        let deps = junction_api::SchemaDeps {
            intake: intake.clone(),
            sharing: loaded.sharing.policy.clone(),
            feed,
            audit: audit.clone(),
        };
        let schema = junction_api::build_schema(store.clone(), deps.clone(), limits.clone());
        let prevalidated =
            junction_api::build_prevalidated_schema(store.clone(), deps, limits.clone());
        let open311 = Open311State {
            store: store.clone(),
            core: loaded.sharing.policy.core.clone(),
            audit: audit.clone(),
            intake,
            uploads: loaded.config.limits.uploads(),
            strict_clients: Arc::new(
                loaded
                    .config
                    .open311
                    .strict_clients
                    .iter()
                    .cloned()
                    .collect(),
            ),
            inbound: inbound_maps(loaded),
        };
        let every = loaded.config.audit.checkpoint_secs;
        if every > 0 {
            crate::checkpoints::Witness::new(loaded)?.spawn(
                store.clone(),
                Duration::from_secs(every),
                closing.subscribe(),
            );
        }
        let state = ApiState {
            store: store.clone(),
            audit,
            auth,
            schema,
            prevalidated,
            limits,
            cohorts: Default::default(),
            sharing: loaded.sharing.policy.clone(),
            closing: closing_rx,
            documents: Default::default(),
            metrics: Default::default(),
            hooks: hooks(loaded),
        };
        let router = Router::new()
            .merge(junction_api::router(state))
            .merge(junction_api::open311::router(open311))
            .merge(health::router(store.clone()))
            .fallback(|| async {
                (
                    axum::http::StatusCode::NOT_FOUND,
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    r#"{"errors":[{"message":"no such route","extensions":{"code":"NOT_FOUND"}}]}"#,
                )
            })
            .layer(axum::middleware::from_fn(request_id::layer));
        Ok(App {
            store,
            router,
            audit_task,
            workers,
            closing,
        })
    }
}

/// A server running in the background.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub store: Store,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl RunningServer {
    /// Stops accepting, lets in-flight requests finish, and flushes the audit log.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await?
    }

    /// Waits until the server stops of its own accord (a signal).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await?
    }
}

/// Builds Junction and serves it on the configured address until shut down or signalled.
pub async fn start(loaded: LoadedConfig) -> anyhow::Result<RunningServer> {
    let app = App::build(&loaded).await?;
    let listen: SocketAddr = loaded
        .config
        .server
        .listen
        .parse()
        .context("server.listen")?;
    let grace = Duration::from_secs(loaded.config.server.shutdown_grace_secs);
    let (stop, stopped) = oneshot::channel::<()>();
    let store = app.store.clone();
    let (addr, task) = crate::serve::serve(
        app,
        listen,
        loaded.config.server.tls.clone(),
        crate::serve::ConnectionLimits::from_config(&loaded.config.server),
        grace,
        stopped,
    )
    .await?;
    Ok(RunningServer {
        addr,
        store,
        stop: Some(stop),
        task,
    })
}

impl App {
    pub(crate) fn into_parts(
        self,
    ) -> (
        Router,
        JoinHandle<()>,
        crate::workers::Workers,
        tokio::sync::watch::Sender<bool>,
    ) {
        (self.router, self.audit_task, self.workers, self.closing)
    }
}

/// A database URL with any password hidden, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{}:***{}", &url[..scheme + 3], user, &url[at..])
        }
        _ => url.to_string(),
    }
}

/// What each connector's back-end means by its statuses, for the updates it pushes over
/// Open311.
fn inbound_maps(
    loaded: &LoadedConfig,
) -> Arc<std::collections::BTreeMap<String, junction_domain::StatusMap>> {
    Arc::new(
        loaded
            .connectors
            .iter()
            .filter_map(|c| Some((c.id.clone(), c.updates.as_ref()?.statuses.clone())))
            .collect(),
    )
}

/// The connectors whose back-ends may push signed updates to `/hooks/{connector}`.
fn hooks(loaded: &LoadedConfig) -> junction_api::hooks::Hooks {
    Arc::new(
        loaded
            .connectors
            .iter()
            .filter_map(|c| {
                let secret = c.push_secret.as_ref()?;
                Some((
                    c.id.clone(),
                    junction_api::hooks::Hook {
                        secret: secrecy::SecretString::from(secret.expose().to_string()),
                        statuses: c.updates.as_ref()?.statuses.clone(),
                    },
                ))
            })
            .collect(),
    )
}
