//! The listener under `spar serve`: a bounded number of connections, a deadline for every
//! request header, and a shutdown that cannot hang.
//!
//! axum's own `serve` accepts without limit, waits for request headers forever and, on
//! shutdown, waits for every connection to close. A few hundred clients that send half a
//! header and stop then use up the file descriptors (health checks time out) and keep Ctrl-C
//! from finishing. Here:
//!
//! - every connection holds a permit of a semaphore of [`ConnectionSettings::max_connections`]
//!   (lowered to what the process's file limit allows). When all are taken, the connection
//!   idle longest (no request in flight: a client still sending its header, or an idle
//!   keep-alive) is closed to make room, so a newcomer such as a health check gets in at once;
//!   requests being answered are never cut.
//! - hyper closes a connection that does not deliver a whole request header within
//!   [`ConnectionSettings::read_timeout`] of connecting or of its previous answer.
//! - on shutdown the listener closes, idle connections close at once, and requests in flight
//!   get [`ConnectionSettings::shutdown_grace`] to finish before the rest are dropped.

use axum::body::Body;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tower::ServiceExt;

/// The default of `spar serve --max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// The default of `spar serve --read-timeout`: long enough for any client on a LAN, short
/// enough that a stalled one frees its connection soon.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default of `spar serve --shutdown-grace`: Ctrl-C returns within a few seconds.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// File descriptors kept free of connections: the episode log, artifacts written, the runtime
/// cache, tokio's own.
const RESERVED_FDS: u64 = 64;

/// A connection this recently active is not closed to make room: its answer may still be
/// being written.
const MIN_IDLE_TO_EVICT: Duration = Duration::from_millis(250);

/// How the listener treats connections.
#[derive(Clone, Debug)]
pub struct ConnectionSettings {
    /// Open connections at most (lowered to what the process's file limit allows).
    pub max_connections: usize,
    /// A client has this long to send a request's header (from connecting, or from its
    /// previous answer on a keep-alive connection), and again this long for its body.
    pub read_timeout: Duration,
    /// On shutdown, requests in flight have this long to finish.
    pub shutdown_grace: Duration,
}

impl Default for ConnectionSettings {
    fn default() -> Self {
        ConnectionSettings {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            read_timeout: DEFAULT_READ_TIMEOUT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
        }
    }
}

/// One open connection, as the accept loop sees it when it must make room.
struct Conn {
    /// Requests being answered on it now.
    in_flight: AtomicUsize,
    /// When it was accepted or last began or finished a request.
    last_active: Mutex<Instant>,
    /// Set once the accept loop chose to close it.
    evicted: AtomicBool,
    /// Wakes its task to close it.
    close: Notify,
}

impl Conn {
    fn touch(&self) {
        *lock(&self.last_active) = Instant::now();
    }

    fn idle_for(&self) -> Option<Duration> {
        let idle =
            self.in_flight.load(Ordering::SeqCst) == 0 && !self.evicted.load(Ordering::SeqCst);
        idle.then(|| lock(&self.last_active).elapsed())
    }
}

/// Marks a request in flight on its connection while alive (released on drop, panic or not).
struct InFlight(Arc<Conn>);

impl InFlight {
    fn begin(conn: Arc<Conn>) -> Self {
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        conn.touch();
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The open connections.
#[derive(Default)]
struct Registry {
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    next: AtomicU64,
}

impl Registry {
    fn add(&self) -> (u64, Arc<Conn>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            last_active: Mutex::new(Instant::now()),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        });
        lock(&self.conns).insert(id, conn.clone());
        (id, conn)
    }

    fn remove(&self, id: u64) {
        lock(&self.conns).remove(&id);
    }

    /// Asks the connection idle longest to close; false when none is idle long enough.
    fn evict_idlest(&self) -> bool {
        let conns = lock(&self.conns);
        let idlest = conns
            .values()
            .filter_map(|c| c.idle_for().map(|idle| (idle, c)))
            .filter(|(idle, _)| *idle >= MIN_IDLE_TO_EVICT)
            .max_by_key(|(idle, _)| *idle);
        match idlest {
            Some((_, conn)) => {
                conn.evicted.store(true, Ordering::SeqCst);
                conn.close.notify_one();
                true
            }
            None => false,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then shuts down within the grace
/// period (see the module documentation).
pub(super) async fn run(
    listener: TcpListener,
    router: Router,
    settings: &ConnectionSettings,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(connection_limit(settings.max_connections)));
    let registry = Arc::new(Registry::default());
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors (or a connection reset before it was accepted):
                // wait a moment for some to close rather than spin.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = admit(&permits, &registry) => permit,
        };
        let (id, conn) = registry.add();
        let connection = Connection {
            router: router.clone(),
            conn,
            read_timeout: settings.read_timeout,
            stopped: stopped.clone(),
        };
        // Dropped when the task ends, panic or not: the entry and the permit go together.
        let registered = Registered {
            registry: registry.clone(),
            id,
            _permit: permit,
        };
        tasks.spawn(async move {
            let _registered = registered;
            connection.serve(stream).await;
        });
    }
    // New clients are refused from here on; those connected are told to finish.
    drop(listener);
    let _ = stop.send(true);
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(settings.shutdown_grace, drained)
        .await
        .is_err()
    {
        tasks.shutdown().await;
    }
}

/// A connection's place in the registry and its permit, released together on drop.
struct Registered {
    registry: Arc<Registry>,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.registry.remove(self.id);
    }
}

/// A response body that keeps its request counted as in flight until hyper has taken its last
/// byte, so that the connection is not closed as idle while the answer is being written.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        hyper::body::Body::poll_frame(std::pin::Pin::new(&mut self.get_mut().body), cx)
    }

    fn is_end_stream(&self) -> bool {
        hyper::body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::Body::size_hint(&self.body)
    }
}

/// A permit for one more connection, closing the idlest one when all are taken.
async fn admit(permits: &Arc<Semaphore>, registry: &Registry) -> OwnedSemaphorePermit {
    loop {
        if let Ok(permit) = permits.clone().try_acquire_owned() {
            return permit;
        }
        registry.evict_idlest();
        // Every connection busy (or just evicted and still closing): look again shortly, as
        // busy ones turn idle without releasing their permits.
        let wait =
            tokio::time::timeout(Duration::from_millis(100), permits.clone().acquire_owned());
        if let Ok(Ok(permit)) = wait.await {
            return permit;
        }
    }
}

/// One accepted connection's task.
struct Connection {
    router: Router,
    conn: Arc<Conn>,
    read_timeout: Duration,
    stopped: watch::Receiver<bool>,
}

impl Connection {
    async fn serve(mut self, stream: TcpStream) {
        let _ = stream.set_nodelay(true);
        let (router, tracked) = (self.router.clone(), self.conn.clone());
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let in_flight = InFlight::begin(tracked.clone());
            let router = router.clone();
            async move {
                let response = router.oneshot(request.map(Body::new)).await?;
                Ok::<_, std::convert::Infallible>(response.map(|body| Tracked {
                    body,
                    _in_flight: in_flight,
                }))
            }
        });
        let http = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(self.read_timeout)
            .serve_connection(TokioIo::new(stream), service)
            // OpenEnv's `/ws` upgrades the connection to a WebSocket.
            .with_upgrades();
        tokio::pin!(http);
        let mut closing = false;
        loop {
            tokio::select! {
                _ = http.as_mut() => break,
                () = self.conn.close.notified(), if !closing => {
                    // Chosen as idle: drop it (closing the socket), unless a request began
                    // meanwhile; that one is answered first.
                    if self.conn.in_flight.load(Ordering::SeqCst) == 0 {
                        break;
                    }
                    closing = true;
                    http.as_mut().graceful_shutdown();
                }
                _ = self.stopped.changed(), if !closing => {
                    closing = true;
                    http.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// `requested`, lowered to what the process may open: the soft file limit is raised to the
/// hard one first, and [`RESERVED_FDS`] stay free for everything but connections. Says so on
/// stderr when it lowers the limit.
pub fn connection_limit(requested: usize) -> usize {
    let Some(files) = raise_file_limit() else {
        return requested.max(1);
    };
    let allowed = usize::try_from(files.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX);
    if requested > allowed {
        eprintln!(
            "spar serve: at most {allowed} connections, not {requested}: the process may open \
             only {files} files (raise `ulimit -n` for more)"
        );
    }
    requested.clamp(1, allowed)
}

/// Raises the soft limit on open files to the hard limit; returns the limit now in force.
#[cfg(unix)]
fn raise_file_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the struct we pass. Raising the soft limit up to the
        // hard one needs no privilege; on failure the old limit stays, which we then report.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    // `rlim_t` is u64 on Linux but not on every Unix.
    #[allow(clippy::useless_conversion)]
    let files = u64::try_from(limit.rlim_cur).unwrap_or(u64::MAX);
    Some(files)
}

#[cfg(not(unix))]
fn raise_file_limit() -> Option<u64> {
    None
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_idlest_connection_is_evicted_and_busy_ones_never() {
        let registry = Registry::default();
        let (_, old) = registry.add();
        let (_, busy) = registry.add();
        let (_, fresh) = registry.add();
        *lock(&old.last_active) -= Duration::from_secs(5);
        *lock(&busy.last_active) -= Duration::from_secs(9);
        busy.in_flight.store(1, Ordering::SeqCst);
        assert!(registry.evict_idlest());
        assert!(old.evicted.load(Ordering::SeqCst));
        assert!(!busy.evicted.load(Ordering::SeqCst));
        // The fresh one is too recent, the busy one busy, the old one already going.
        assert!(!registry.evict_idlest());
        assert!(!fresh.evicted.load(Ordering::SeqCst));
        drop(InFlight(busy.clone()));
        assert_eq!(busy.in_flight.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_connection_limit_fits_the_file_limit() {
        let limit = connection_limit(usize::MAX);
        assert!((1..usize::MAX).contains(&limit));
        assert_eq!(connection_limit(3), 3);
        assert_eq!(connection_limit(0), 1);
    }
}
