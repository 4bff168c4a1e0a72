//! Header and idle timeouts of one connection.
//!
//! hyper's own `header_read_timeout` restarts whenever a keep-alive
//! connection goes idle (hyper 1.12, `proto/h1/conn.rs`: going idle re-arms
//! the header timer), so it closes idle connections after the header
//! timeout too and cannot give them a longer idle timeout. A [`Watch`]
//! instead follows the connection's phase from its bytes and requests, and
//! [`Watch::expired`] resolves when a phase has lasted longer than allowed.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Reading a request's head: since its first byte, or since the
    /// connection opened. Bounded by the header timeout.
    Head { since: Instant },
    /// A request is being answered; the request deadline bounds it.
    Busy,
    /// Between requests: since the last byte of a response was written.
    /// Bounded by the idle timeout.
    Idle { since: Instant },
}

pub(super) struct Watch {
    phase: Mutex<Phase>,
    changed: Notify,
    header_timeout: Duration,
    idle_timeout: Duration,
}

impl Watch {
    pub(super) fn new(header_timeout: Duration, idle_timeout: Duration) -> Arc<Watch> {
        let phase = Mutex::new(Phase::Head { since: Instant::now() });
        Arc::new(Watch { phase, changed: Notify::new(), header_timeout, idle_timeout })
    }

    fn update(&self, next: impl FnOnce(Phase) -> Phase) {
        // A panic cannot leave a half-written Copy value: the data is fine.
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        let new = next(*phase);
        if new != *phase {
            *phase = new;
            self.changed.notify_one();
        }
    }

    pub(super) fn request_started(&self) {
        self.update(|_| Phase::Busy);
    }

    pub(super) fn request_answered(&self) {
        self.update(|_| Phase::Idle { since: Instant::now() });
    }

    /// The first byte after a response starts the next request's head.
    fn bytes_read(&self) {
        self.update(|p| match p {
            Phase::Idle { .. } => Phase::Head { since: Instant::now() },
            other => other,
        });
    }

    /// A client still reading a long response is not idle.
    fn bytes_written(&self) {
        self.update(|p| match p {
            Phase::Idle { .. } => Phase::Idle { since: Instant::now() },
            other => other,
        });
    }

    fn deadline(&self) -> Option<Instant> {
        match *self.phase.lock().unwrap_or_else(PoisonError::into_inner) {
            Phase::Head { since } => Some(since + self.header_timeout),
            Phase::Idle { since } => Some(since + self.idle_timeout),
            Phase::Busy => None,
        }
    }

    /// Resolves once the current phase has outlived its timeout.
    pub(super) async fn expired(&self) {
        loop {
            // Created before reading the deadline, so no change is missed.
            let changed = self.changed.notified();
            match self.deadline() {
                Some(at) if at <= Instant::now() => return,
                Some(at) => {
                    tokio::select! {
                        () = tokio::time::sleep_until(at) => {}
                        () = changed => {}
                    }
                }
                None => changed.await,
            }
        }
    }
}

/// A socket that reports its reads and writes to a [`Watch`].
pub(super) struct Watched<S> {
    inner: S,
    watch: Arc<Watch>,
}

impl<S> Watched<S> {
    pub(super) fn new(inner: S, watch: Arc<Watch>) -> Watched<S> {
        Watched { inner, watch }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.watch.bytes_read();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.watch.bytes_written();
        }
        polled
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = polled
            && n > 0
        {
            self.watch.bytes_written();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
