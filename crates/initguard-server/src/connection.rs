//! One client connection, with a bound on every wait.
//!
//! hyper bounds what it parses but not how long a client may take: a client sending its
//! headers a byte at a time, keeping a connection open without ever asking anything, or never
//! reading its answer would each hold a connection, a file descriptor and the answer's memory
//! for as long as it likes. Each connection here has a watchdog that knows, from what the
//! connection did last, which wait it is in and closes it when that wait runs out:
//!
//! - no request in flight and nothing read since the last answer: the idle keep-alive timeout;
//! - HTTP/1.1 bytes read since the last answer but no complete request head: the header timeout;
//! - a request in flight: the handler bounds the body and the evaluation, and every write
//!   that makes no progress for the write timeout fails the connection.
//!
//! At shutdown, or when the server is at its connection cap and a new client is waiting, the
//! connections with no request in flight are closed at once.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

/// The bounds on one connection's waits and on how many connections are open.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// The TLS handshake, from the TCP accept.
    pub handshake_timeout: Duration,
    /// A request head, from its first byte (HTTP/1.1; HTTP/2 heads are bounded frames).
    pub header_timeout: Duration,
    /// A connection with no request in flight. Above the apiserver's idle keep-alive (its HTTP
    /// client keeps idle connections 90 s), so that it, not the server, ends them.
    pub idle_timeout: Duration,
    /// A write (an answer a client does not read) that makes no progress.
    pub write_timeout: Duration,
    /// Connections open at once; a client beyond it first makes room by closing idle
    /// connections, and is refused (and counted) if none is idle.
    pub max_connections: usize,
    /// HTTP/2 streams one connection may have open.
    pub max_concurrent_streams: u32,
    /// HTTP/2 streams a client may reset before the server answers them, or make the server
    /// reset, before the connection is closed (rapid-reset protection).
    pub max_reset_streams: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_mins(2),
            write_timeout: Duration::from_secs(10),
            max_connections: 1024,
            max_concurrent_streams: 64,
            max_reset_streams: 32,
        }
    }
}

/// A wait a connection can be in, each with its own bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Handshake,
    Header,
    Idle,
    Write,
}

impl Wait {
    /// The name of the wait in metrics and logs.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Self::Handshake => "handshake",
            Self::Header => "header",
            Self::Idle => "idle",
            Self::Write => "write",
        }
    }
}

/// What a connection did last, shared by its I/O, its requests and its watchdog.
#[derive(Debug)]
struct State {
    in_flight: usize,
    /// A write failed for making no progress.
    write_stalled: bool,
    /// When the last request finished (or the connection opened).
    idle_since: Instant,
    /// When the first byte after `idle_since` arrived.
    head_started: Option<Instant>,
}

/// A connection's activity; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Activity(Arc<Mutex<State>>);

impl Activity {
    pub(crate) fn new() -> Self {
        Self(Arc::new(Mutex::new(State {
            in_flight: 0,
            write_stalled: false,
            idle_since: Instant::now(),
            head_started: None,
        })))
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn read_some(&self) {
        self.with(|state| {
            if state.in_flight == 0 && state.head_started.is_none() {
                state.head_started = Some(Instant::now());
            }
        });
    }

    /// Marks a request as in flight until the returned guard is dropped.
    pub(crate) fn begin(&self) -> InFlight {
        self.with(|state| {
            state.in_flight += 1;
            state.head_started = None;
        });
        InFlight(self.clone())
    }

    pub(crate) fn is_idle(&self) -> bool {
        self.with(|state| state.in_flight == 0)
    }

    pub(crate) fn write_stalled(&self) -> bool {
        self.with(|state| state.write_stalled)
    }

    /// When the connection's current wait runs out, and which wait it is; `None` while a
    /// request is in flight.
    pub(crate) fn deadline(
        &self,
        limits: &ConnectionLimits,
        reads_heads: bool,
    ) -> Option<(Instant, Wait)> {
        self.with(|state| {
            if state.in_flight > 0 {
                return None;
            }
            Some(match state.head_started {
                Some(started) if reads_heads => (started + limits.header_timeout, Wait::Header),
                _ => (state.idle_since + limits.idle_timeout, Wait::Idle),
            })
        })
    }
}

/// A request in flight on a connection.
#[derive(Debug)]
pub(crate) struct InFlight(Activity);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.with(|state| {
            state.in_flight -= 1;
            if state.in_flight == 0 {
                state.idle_since = Instant::now();
                state.head_started = None;
            }
        });
    }
}

/// The connection's stream, recording reads and failing writes that make no progress.
pub(crate) struct GuardedIo<S> {
    inner: S,
    activity: Activity,
    write_timeout: Duration,
    stalled_write: Option<Pin<Box<Sleep>>>,
}

impl<S> GuardedIo<S> {
    pub(crate) fn new(inner: S, activity: Activity, write_timeout: Duration) -> Self {
        Self {
            inner,
            activity,
            write_timeout,
            stalled_write: None,
        }
    }

    /// Turns a pending write into an error once it has been pending for the write timeout.
    fn bound_write<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.stalled_write = None;
            return polled;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled_write
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match stalled.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err({
                self.activity.with(|state| state.write_stalled = true);
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the client read nothing for {timeout:?}"),
                )
            })),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for GuardedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.read_some();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for GuardedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.bound_write(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.bound_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        self.bound_write(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.bound_write(cx, polled)
    }
}

/// Signals that the idle connections should close: a new client is waiting for room.
#[derive(Debug, Default)]
pub(crate) struct Pressure(Notify);

impl Pressure {
    pub(crate) fn raise(&self) {
        self.0.notify_waiters();
    }

    pub(crate) async fn raised(&self) {
        self.0.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_wait_a_connection_is_in_decides_its_deadline() {
        let limits = ConnectionLimits::default();
        let activity = Activity::new();
        let opened = Instant::now();
        assert_eq!(
            activity.deadline(&limits, true),
            Some((opened + limits.idle_timeout, Wait::Idle))
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        activity.read_some();
        let head = Instant::now();
        assert_eq!(
            activity.deadline(&limits, true),
            Some((head + limits.header_timeout, Wait::Header)),
            "a started head must complete within the header timeout"
        );
        assert_eq!(
            activity.deadline(&limits, false),
            Some((opened + limits.idle_timeout, Wait::Idle)),
            "HTTP/2 control frames do not start a head"
        );
        let request = activity.begin();
        assert_eq!(activity.deadline(&limits, true), None);
        assert!(!activity.is_idle());
        tokio::time::advance(Duration::from_secs(3)).await;
        drop(request);
        assert!(activity.is_idle());
        assert_eq!(
            activity.deadline(&limits, true),
            Some((Instant::now() + limits.idle_timeout, Wait::Idle))
        );
    }
}
