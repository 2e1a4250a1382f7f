//! Listening: plain HTTP, or HTTPS with rustls; graceful shutdown on SIGTERM, Ctrl-C or request.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::app::App;
use crate::config::TlsConfig;

/// Binds `listen` and serves `app` in the background. Returns the bound address and the task,
/// which ends once shutdown is complete and the audit log is flushed.
pub async fn serve(
    app: App,
    listen: SocketAddr,
    tls: Option<TlsConfig>,
    grace: Duration,
    stop: oneshot::Receiver<()>,
) -> anyhow::Result<(SocketAddr, JoinHandle<anyhow::Result<()>>)> {
    let (router, audit_task, workers, closing) = app.into_parts();
    let service = router.into_make_service_with_connect_info::<SocketAddr>();
    let shutdown = async move {
        tokio::select! {
            _ = stop => {}
            _ = signal() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
        // WebSocket connections are not requests the server waits for: tell them to close.
        let _ = closing.send(true);
    };
    let std_listener =
        std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let task = match tls {
        None => {
            let listener = tokio::net::TcpListener::from_std(std_listener)?;
            tracing::info!(%addr, "listening (HTTP)");
            tokio::spawn(async move {
                let (done_tx, done_rx) = oneshot::channel::<()>();
                let server = axum::serve(listener, service).with_graceful_shutdown(async move {
                    shutdown.await;
                    let _ = done_tx.send(());
                });
                let server = tokio::spawn(async move { server.await });
                // Once shutdown starts, in-flight requests get `grace` to finish.
                let mut server = server;
                tokio::select! {
                    r = &mut server => r??,
                    _ = async { let _ = done_rx.await; tokio::time::sleep(grace).await } => {
                        tracing::warn!("grace period over; dropping remaining connections");
                        server.abort();
                    }
                }
                drop(workers);
                finish(audit_task).await
            })
        }
        Some(tls) => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem_file(&tls.cert, &tls.key)
                .await
                .with_context(|| {
                    format!(
                        "loading TLS certificate {} and key {}",
                        tls.cert.display(),
                        tls.key.display()
                    )
                })?;
            let handle = axum_server::Handle::new();
            let shutdown_handle = handle.clone();
            tokio::spawn(async move {
                shutdown.await;
                shutdown_handle.graceful_shutdown(Some(grace));
            });
            tracing::info!(%addr, "listening (HTTPS)");
            tokio::spawn(async move {
                axum_server::from_tcp_rustls(std_listener, config)?
                    .handle(handle)
                    .serve(service)
                    .await?;
                drop(workers);
                finish(audit_task).await
            })
        }
    };
    Ok((addr, task))
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

async fn signal() {
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
