//! Listening: plain HTTP, or HTTPS with rustls, through one server with the connection limits
//! of `[server]`; graceful shutdown on SIGTERM, Ctrl-C or request.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use axum_server::Handle;
use axum_server::tls_rustls::{RustlsAcceptor, RustlsConfig};
use hyper_util::rt::TokioTimer;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::{ServerConfig, TlsConfig};
use crate::connections::LimitAcceptor;

/// What one connection may take: how long it may take to send a request's headers (counted
/// from when it opens, or from its last answer, so an idle keep-alive connection closes after
/// it too), how long it may pause while sending a body, and how many connections may be open
/// at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub max_connections: usize,
}

impl ConnectionLimits {
    pub fn from_config(server: &ServerConfig) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(server.header_timeout_secs),
            body_timeout: Duration::from_secs(server.body_timeout_secs),
            max_connections: server.max_connections,
        }
    }
}

/// Binds `listen` and serves `app` in the background. Returns the bound address and the task,
/// which ends once shutdown is complete and the audit log is flushed.
pub async fn serve(
    app: App,
    listen: SocketAddr,
    tls: Option<TlsConfig>,
    limits: ConnectionLimits,
    grace: Duration,
    stop: oneshot::Receiver<()>,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let (router, audit_task, workers, closing) = app.into_parts();
    let router = router.layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
        limits.body_timeout,
    ));
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let handle: Handle<SocketAddr> = Handle::new();
    let shutdown_handle = handle.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = stop => {}
            _ = signal() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
        // WebSocket connections are not requests the server waits for: tell them to close.
        let _ = closing.send(true);
        // Once shutdown starts, in-flight requests get `grace` to finish.
        shutdown_handle.graceful_shutdown(Some(grace));
    });
    let std_listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let limit = LimitAcceptor::new(limits.max_connections, limits.header_timeout);
    let task = match tls {
        None => {
            let mut server = axum_server::from_tcp(std_listener)?
                .acceptor(limit)
                .handle(handle);
            configure(server.http_builder(), &limits);
            tracing::info!(%addr, "listening (HTTP)");
            tokio::spawn(async move {
                server.serve(service).await?;
                drop(workers);
                finish(audit_task).await
            })
        }
        Some(tls) => {
            let config = RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            // The handshake counts against the header timeout: a client that opens a
            // connection and says nothing is dropped either way.
            let acceptor = RustlsAcceptor::new(config)
                .handshake_timeout(limits.header_timeout)
                .acceptor(limit);
            let mut server = axum_server::from_tcp(std_listener)?
                .acceptor(acceptor)
                .handle(handle);
            configure(server.http_builder(), &limits);
            tracing::info!(%addr, "listening (HTTPS)");
            tokio::spawn(async move {
                server.serve(service).await?;
                drop(workers);
                finish(audit_task).await
            })
        }
    };
    Ok((addr, task))
}

/// Sets hyper's timers: HTTP/1 headers must arrive within the header timeout (hyper starts
/// it whenever the connection waits for a request); HTTP/2 connections are pinged when idle
/// and closed when a ping goes unanswered.
fn configure(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    limits: &ConnectionLimits,
) {
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(limits.header_timeout))
        .keep_alive_timeout(limits.header_timeout);
}

/// Waits for the audit writer to commit what it holds; it stops once the router is gone.
async fn finish(audit_task: JoinHandle<()>) -> anyhow::Result<()> {
    match tokio::time::timeout(Duration::from_secs(30), audit_task).await {
        Ok(_) => {
            tracing::info!("stopped");
            Ok(())
        }
        Err(_) => anyhow::bail!("audit writer did not finish within 30 s"),
    }
}

pub(crate) async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
