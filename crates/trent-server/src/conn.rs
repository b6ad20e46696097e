//! Connections, for the API and the admin listener alike: slots, a cap per source address, and
//! deadlines, so that idle or slow clients cannot hold the service.
//!
//! - At most `max_connections` are served at once; more wait in the listen backlog.
//! - At most `max_per_source` from one address (an IPv6 address counts by its /64): one more is
//!   closed as soon as it is accepted.
//! - A new connection must deliver its first request's headers within `header_timeout` of
//!   opening (the TLS handshake included); a later request, within `header_timeout` of its first
//!   byte; a keep-alive connection with no request for `idle_timeout` after its last answer is
//!   closed. hyper's own header timer would run from the end of each answer, tying the idle time
//!   to the header deadline, so it is off and [`Activity`] keeps these deadlines instead.

use crate::metrics::{CloseReason, Listener, Metrics};
use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

/// How many connections a listener serves and how long it waits for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnLimits {
    /// Connections served at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// Connections served at once from one source address; 0 for no cap.
    pub max_per_source: usize,
    /// Time for a new connection's first request headers (and TLS handshake), and for each later
    /// request's headers from its first byte.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may stay without a request after its last answer.
    pub idle_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits {
            max_connections: 4096,
            max_per_source: 512,
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
        }
    }
}

/// A source address as the cap counts it: an IPv4 address, or the /64 of an IPv6 one (a host
/// usually has a whole /64).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let mut segments = v6.segments();
            segments[4..].fill(0);
            IpAddr::V6(segments.into())
        }
        v4 => v4,
    }
}

/// Connections open per source address.
#[derive(Debug, Default)]
struct Sources {
    open: parking_lot::Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`Sources`], given back when dropped.
#[derive(Debug)]
pub struct SourceSlot {
    sources: Arc<Sources>,
    key: IpAddr,
}

impl Drop for SourceSlot {
    fn drop(&mut self) {
        let mut open = self.sources.open.lock();
        if let Some(n) = open.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.key);
            }
        }
    }
}

impl Sources {
    /// A place for one more connection from `ip`, unless it has `cap` already (0: no cap).
    fn enter(self: &Arc<Self>, ip: IpAddr, cap: usize) -> Option<SourceSlot> {
        let key = source_key(ip);
        let mut open = self.open.lock();
        let n = open.entry(key).or_insert(0);
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(SourceSlot {
            sources: self.clone(),
            key,
        })
    }
}

/// What a connection holds while it is served: its slot among all and among its source's.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    _source: SourceSlot,
    _open: OpenGuard,
}

/// Counts a connection as open until dropped.
#[derive(Debug)]
struct OpenGuard {
    metrics: Arc<Metrics>,
    listener: Listener,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.metrics.connection_closed(self.listener);
    }
}

/// Accept connections from `listener` until `shutdown` completes, within `limits`: each goes to
/// `serve_one` with the [`Slot`] it holds while served.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    limits: ConnLimits,
    metrics: Arc<Metrics>,
    which: Listener,
    shutdown: impl Future<Output = ()>,
    mut serve_one: impl FnMut(TcpStream, SocketAddr, Slot),
) {
    tokio::pin!(shutdown);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let sources = Arc::new(Sources::default());
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            permit = slots.clone().acquire_owned() => match permit {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, remote) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(source) = sources.enter(remote.ip(), limits.max_per_source) else {
            // Closed at once: the client sees the connection end before any answer.
            tracing::debug!(%remote, "too many connections from this address");
            metrics.connection_cut(which, CloseReason::SourceLimit);
            drop(stream);
            continue;
        };
        metrics.connection_opened(which);
        let open = OpenGuard {
            metrics: metrics.clone(),
            listener: which,
        };
        serve_one(
            stream,
            remote,
            Slot {
                _permit: permit,
                _source: source,
                _open: open,
            },
        );
    }
}

/// Where a connection is between requests, with the time it got there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Opened, no request answered yet: the header deadline runs from the opening.
    Fresh,
    /// Answered, nothing new arrived: the idle deadline runs.
    Idle,
    /// A request's first bytes arrived: the header deadline runs from them.
    Head,
    /// A request is being answered: no deadline here (the request timeout covers the body).
    Busy,
}

/// A connection's phase and when it began, in one atomic (phase in the top two bits,
/// milliseconds since the connection opened below), read by its watchdog.
#[derive(Debug)]
pub(crate) struct Activity {
    opened: Instant,
    state: AtomicU64,
}

const PHASE_SHIFT: u32 = 62;

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            opened: Instant::now(),
            state: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        (self.opened.elapsed().as_millis() as u64).min((1 << PHASE_SHIFT) - 1)
    }

    fn set(&self, phase: Phase) {
        let code = match phase {
            Phase::Fresh => 0,
            Phase::Idle => 1,
            Phase::Head => 2,
            Phase::Busy => 3,
        };
        self.state
            .store((code << PHASE_SHIFT) | self.now_ms(), Relaxed);
    }

    fn get(&self) -> (Phase, u64) {
        let raw = self.state.load(Relaxed);
        let phase = match raw >> PHASE_SHIFT {
            0 => Phase::Fresh,
            1 => Phase::Idle,
            2 => Phase::Head,
            _ => Phase::Busy,
        };
        (phase, raw & ((1 << PHASE_SHIFT) - 1))
    }

    /// A request has been read (its headers at least) and is being answered.
    pub(crate) fn busy(&self) {
        self.set(Phase::Busy);
    }

    /// Its answer is ready.
    pub(crate) fn idle(&self) {
        self.set(Phase::Idle);
    }

    /// Bytes arrived: on an idle connection they start a request's headers.
    fn bytes_arrived(&self) {
        if self.get().0 == Phase::Idle {
            self.set(Phase::Head);
        }
    }

    /// Completes when the connection has overstayed a deadline, with which one.
    ///
    /// The watchdog never sleeps longer than the shorter of the two limits, so it sees every
    /// phase before that phase's own deadline and keeps each deadline exactly, without the
    /// request path ever waking it.
    pub(crate) async fn expired(&self, limits: &ConnLimits) -> CloseReason {
        let step = limits.header_timeout.min(limits.idle_timeout);
        loop {
            let (phase, since) = self.get();
            let now = Instant::now();
            let wake = match phase {
                Phase::Busy => now + step,
                Phase::Fresh | Phase::Head | Phase::Idle => {
                    let (limit, reason) = if phase == Phase::Idle {
                        (limits.idle_timeout, CloseReason::IdleTimeout)
                    } else {
                        (limits.header_timeout, CloseReason::HeaderTimeout)
                    };
                    let deadline = self.opened + Duration::from_millis(since) + limit;
                    if deadline <= now {
                        return reason;
                    }
                    deadline.min(now + step)
                }
            };
            tokio::time::sleep_until(wake).await;
        }
    }
}

/// A connection's stream, telling its [`Activity`] when bytes arrive.
pub(crate) struct Watched<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Arc<Activity>) -> Self {
        Watched { inner, activity }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Serve HTTP/1.1 on `stream` with `handle` until the client goes, or overstays a deadline of
/// `limits` (counted in `metrics` as closed by `which`).
pub(crate) async fn serve_http1<S, F, Fut>(
    stream: S,
    remote: SocketAddr,
    limits: ConnLimits,
    metrics: &Metrics,
    which: Listener,
    activity: Arc<Activity>,
    handle: F,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    F: Fn(http::Request<hyper::body::Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<http_body_util::Full<bytes::Bytes>>> + Send + 'static,
{
    let handle = Arc::new(handle);
    let svc = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req| {
            activity.busy();
            let answer = handle(req);
            let activity = activity.clone();
            async move {
                let resp = answer.await;
                activity.idle();
                Ok::<_, std::convert::Infallible>(resp)
            }
        })
    };
    let io = hyper_util::rt::TokioIo::new(Watched::new(stream, activity.clone()));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true)
        .serve_connection(io, svc);
    tokio::select! {
        ended = conn => {
            if let Err(e) = ended {
                tracing::debug!(%remote, error = %e, "connection ended with an error");
            }
        }
        reason = activity.expired(&limits) => {
            tracing::debug!(%remote, reason = reason.as_str(), "connection closed");
            metrics.connection_cut(which, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_cap_counts_per_address_and_ipv6_per_64() {
        let sources = Arc::new(Sources::default());
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = sources.enter(a, 2).unwrap();
        let _second = sources.enter(a, 2).unwrap();
        assert!(sources.enter(a, 2).is_none());
        assert!(sources.enter(b, 2).is_some());
        drop(first);
        assert!(sources.enter(a, 2).is_some());
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let other_64: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let _x = sources.enter(v6, 1).unwrap();
        assert!(sources.enter(same_64, 1).is_none());
        assert!(sources.enter(other_64, 1).is_some());
        let mapped: IpAddr = "::ffff:127.0.0.2".parse().unwrap();
        assert_eq!(source_key(mapped), b);
        // No cap.
        for _ in 0..10 {
            std::mem::forget(sources.enter(a, 0).unwrap());
        }
    }

    #[test]
    fn phases_read_back() {
        let a = Activity::new();
        assert_eq!(a.get().0, Phase::Fresh);
        a.bytes_arrived();
        assert_eq!(
            a.get().0,
            Phase::Fresh,
            "a fresh connection's deadline runs from its opening"
        );
        a.busy();
        a.bytes_arrived();
        assert_eq!(a.get().0, Phase::Busy);
        a.idle();
        assert_eq!(a.get().0, Phase::Idle);
        a.bytes_arrived();
        assert_eq!(a.get().0, Phase::Head);
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_by_phase() {
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(20),
            ..ConnLimits::default()
        };
        let a = Arc::new(Activity::new());
        let t0 = Instant::now();
        assert_eq!(a.expired(&limits).await, CloseReason::HeaderTimeout);
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
        a.idle();
        assert_eq!(a.expired(&limits).await, CloseReason::IdleTimeout);
        assert_eq!(t0.elapsed(), Duration::from_secs(25));
    }

    #[tokio::test(start_paused = true)]
    async fn a_phase_that_begins_while_the_watchdog_sleeps_keeps_its_own_deadline() {
        // An idle limit shorter than the header limit: the answer at 1 s starts a 2 s idle
        // deadline while the watchdog sleeps on the fresh connection's (6 s).
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(6),
            idle_timeout: Duration::from_secs(2),
            ..ConnLimits::default()
        };
        let a = Arc::new(Activity::new());
        let t0 = Instant::now();
        let watchdog = {
            let a = a.clone();
            tokio::spawn(async move { a.expired(&limits).await })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        a.busy();
        a.idle();
        assert_eq!(watchdog.await.unwrap(), CloseReason::IdleTimeout);
        assert_eq!(t0.elapsed(), Duration::from_secs(3));

        // And the other way round: a request's first bytes on an idle connection start a header
        // deadline shorter than what is left of the idle one.
        let limits = ConnLimits {
            header_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(20),
            ..ConnLimits::default()
        };
        let a = Arc::new(Activity::new());
        a.busy();
        a.idle();
        let t0 = Instant::now();
        let watchdog = {
            let a = a.clone();
            tokio::spawn(async move { a.expired(&limits).await })
        };
        tokio::time::sleep(Duration::from_secs(3)).await;
        a.bytes_arrived();
        assert_eq!(watchdog.await.unwrap(), CloseReason::HeaderTimeout);
        assert_eq!(t0.elapsed(), Duration::from_secs(5));
    }
}
