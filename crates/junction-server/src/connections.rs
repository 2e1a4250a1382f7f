//! A cap on open connections: each accepted connection holds a permit until it closes, and a
//! connection that arrives when none is left is closed at once, so a flood of idle
//! connections cannot exhaust the process. A connection must also start talking within the
//! header timeout: hyper's own header timer starts only once it has seen the first bytes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_server::accept::Accept;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Accepts a connection only while fewer than its limit are open, and only once it sends
/// its first bytes within `first_bytes`.
#[derive(Clone, Debug)]
pub struct LimitAcceptor {
    permits: Arc<Semaphore>,
    first_bytes: Duration,
}

impl LimitAcceptor {
    pub fn new(max_connections: usize, first_bytes: Duration) -> LimitAcceptor {
        LimitAcceptor {
            permits: Arc::new(Semaphore::new(max_connections)),
            first_bytes,
        }
    }
}

impl<S> Accept<TcpStream, S> for LimitAcceptor
where
    S: Send + 'static,
{
    type Stream = Permitted<TcpStream>;
    type Service = S;
    type Future = Pin<Box<dyn Future<Output = io::Result<(Permitted<TcpStream>, S)>> + Send>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let permit = self.permits.clone().try_acquire_owned();
        let first_bytes = self.first_bytes;
        Box::pin(async move {
            let Ok(permit) = permit else {
                metrics::counter!("junction_connections_refused_total").increment(1);
                tracing::warn!("connection refused: the connection limit is reached");
                return Err(io::Error::other("the connection limit is reached"));
            };
            // `peek` waits for data without taking it (`readable` may answer at once for a
            // socket that has nothing yet).
            let mut first = [0u8; 1];
            match tokio::time::timeout(first_bytes, stream.peek(&mut first)).await {
                Ok(Ok(0)) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed before sending anything",
                )),
                Ok(Ok(_)) => Ok((
                    Permitted {
                        stream,
                        _permit: permit,
                    },
                    service,
                )),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the connection sent nothing within the header timeout",
                )),
            }
        })
    }
}

/// A connection holding its permit; the permit goes back when the connection is dropped.
#[derive(Debug)]
pub struct Permitted<I> {
    stream: I,
    _permit: OwnedSemaphorePermit,
}

impl<I: AsyncRead + Unpin> AsyncRead for Permitted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Permitted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
