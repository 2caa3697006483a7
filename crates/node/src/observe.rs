//! [`Observed`]: a thin decorator around each backend handed to the coordinator, so the node
//! can report what the coordinator only reports as text.
//!
//! The coordinator's `Error` events and its `AllRoutesFailed` error carry strings, and its
//! accept loop turns a listener's typed refusals into strings too. The node promises typed
//! errors (`kind`, `remote`), so it watches the transports it gives the coordinator:
//!
//! - every failed dial is reported at once with its typed core error and the route dialed
//!   (and the coordinator's own text event for the same failure is then skipped);
//! - every refused inbound attempt is reported with its typed error and source address, and
//!   not passed on (the coordinator would only turn it into text);
//! - each listener's counters are mirrored, so they can be printed after the coordinator
//!   closed it;
//! - outbound connections are remembered (bounded), so `send` can wait until they closed
//!   cleanly before it exits 0.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bitcraps_transport_core::{
    async_trait, Capabilities, CloseReason, Connection, ConnectionSender, Error, Inbound, Listener,
    ListenerStats, PeerId, Result, Transport, TransportAddress, TransportKind,
};

use crate::output::{error_kind, Event, Output};

/// Coordinator error texts remembered as already reported (a few dials' worth).
const REPORTED_CAP: usize = 64;
/// Outbound connections remembered at most (the coordinator keeps 3 per peer).
const DIALED_CAP: usize = 64;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the decorators of one node share.
#[derive(Debug)]
pub(crate) struct Observer {
    out: Output,
    dial_timeout: Duration,
    dial_failures: AtomicU64,
    reported: Mutex<VecDeque<String>>,
    dialed: Mutex<Dialed>,
    listeners: Mutex<Vec<(TransportAddress, Arc<Mutex<ListenerStats>>)>>,
}

impl Observer {
    /// An observer printing on `out`; dials are given up after `dial_timeout` (the coordinator
    /// must be given a longer one, so the typed timeout is the one seen).
    pub(crate) fn new(out: Output, dial_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            out,
            dial_timeout,
            dial_failures: AtomicU64::new(0),
            reported: Mutex::new(VecDeque::new()),
            dialed: Mutex::new(Dialed::default()),
            listeners: Mutex::new(Vec::new()),
        })
    }

    /// Wraps `inner`.
    pub(crate) fn wrap(self: &Arc<Self>, inner: Arc<dyn Transport>) -> Arc<dyn Transport> {
        Arc::new(Observed {
            inner,
            observer: self.clone(),
        })
    }

    /// Dials that failed so far (each one reported).
    pub(crate) fn dial_failures(&self) -> u64 {
        self.dial_failures.load(Ordering::Relaxed)
    }

    /// True if `text` (a coordinator `Error` event) is a failure already reported typed; it
    /// is then forgotten.
    pub(crate) fn already_reported(&self, text: &str) -> bool {
        let mut reported = lock(&self.reported);
        match reported.iter().position(|r| r == text) {
            Some(i) => {
                reported.remove(i);
                true
            }
            None => false,
        }
    }

    fn dial_failed(&self, addr: &TransportAddress, error: &Error) {
        self.dial_failures.fetch_add(1, Ordering::Relaxed);
        {
            // The exact text of the coordinator's event for this failure.
            let mut reported = lock(&self.reported);
            if reported.len() >= REPORTED_CAP {
                reported.pop_front();
            }
            reported.push_back(format!("dial {addr}: {error}"));
        }
        if self.out.is_json() {
            self.out.emit(&Event::error(None, Some(addr), error));
        } else {
            let (kind, detail) = error_kind(error);
            let detail = detail.map(|d| format!(": {d}")).unwrap_or_default();
            eprintln!("error: dial {addr}: {error} ({kind}{detail})");
        }
    }

    fn dialed(&self, sender: ConnectionSender) {
        let mut dialed = lock(&self.dialed);
        if dialed.open.len() >= DIALED_CAP {
            // Forget the connections that ended.
            dialed.open.retain(|s| !s.is_closed());
        }
        if dialed.open.len() < DIALED_CAP {
            dialed.open.push(sender);
        }
    }

    /// The outbound connections open now (those the final close must end cleanly; ones that
    /// ended earlier were failed over from).
    pub(crate) fn open_outbound(&self) -> Vec<ConnectionSender> {
        let dialed = lock(&self.dialed);
        dialed
            .open
            .iter()
            .filter(|s| !s.is_closed())
            .cloned()
            .collect()
    }

    /// Every listener opened so far, with its latest counters (final once it is closed).
    pub(crate) fn listener_stats(&self) -> Vec<(TransportAddress, ListenerStats)> {
        lock(&self.listeners)
            .iter()
            .map(|(addr, stats)| (addr.clone(), *lock(stats)))
            .collect()
    }
}

/// Waits (at most `guard` each) until `connections` have ended, and returns the reasons of
/// those that did not end cleanly (closed by either side).
pub(crate) async fn closed_cleanly(
    connections: Vec<ConnectionSender>,
    guard: Duration,
) -> Vec<String> {
    let mut unclean = Vec::new();
    for sender in connections {
        let remote = sender.info().remote_addr.clone();
        if tokio::time::timeout(guard, sender.closed()).await.is_err() {
            unclean.push(format!("{remote}: still open after {guard:?}"));
            continue;
        }
        match sender.close_reason() {
            Some(CloseReason::Local(_) | CloseReason::Remote(_)) => {}
            Some(other) => unclean.push(format!("{remote}: {other}")),
            None => unclean.push(format!("{remote}: ended without a reason")),
        }
    }
    unclean
}

/// The outbound connections remembered (capped).
#[derive(Debug, Default)]
struct Dialed {
    open: Vec<ConnectionSender>,
}

/// A backend as the coordinator sees it (see the module docs).
struct Observed {
    inner: Arc<dyn Transport>,
    observer: Arc<Observer>,
}

#[async_trait]
impl Transport for Observed {
    fn kind(&self) -> TransportKind {
        self.inner.kind()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id()
    }

    fn supports(&self, addr: &TransportAddress) -> bool {
        self.inner.supports(addr)
    }

    async fn listen(&self, addr: &TransportAddress) -> Result<Box<dyn Listener>> {
        let inner = self.inner.listen(addr).await?;
        let stats = Arc::new(Mutex::new(inner.stats()));
        lock(&self.observer.listeners).push((inner.local_addr().clone(), stats.clone()));
        Ok(Box::new(ObservedListener {
            inner,
            out: self.observer.out,
            stats,
        }))
    }

    async fn dial(&self, addr: &TransportAddress, expect: Option<PeerId>) -> Result<Connection> {
        let timeout = self.observer.dial_timeout;
        let result = match tokio::time::timeout(timeout, self.inner.dial(addr, expect)).await {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                operation: "dial",
                after: timeout,
            }),
        };
        match &result {
            Ok(conn) => self.observer.dialed(conn.sender()),
            Err(error) => self.observer.dial_failed(addr, error),
        }
        result
    }
}

/// A listener whose refusals are reported typed and whose counters are mirrored.
struct ObservedListener {
    inner: Box<dyn Listener>,
    out: Output,
    stats: Arc<Mutex<ListenerStats>>,
}

#[async_trait]
impl Listener for ObservedListener {
    fn local_addr(&self) -> &TransportAddress {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> Result<Inbound> {
        loop {
            let inbound = self.inner.accept().await;
            *lock(&self.stats) = self.inner.stats();
            match inbound {
                Ok(Inbound::Refused { remote, error }) => {
                    self.out.emit(&Event::error(None, Some(&remote), &error));
                }
                other => return other,
            }
        }
    }

    fn stats(&self) -> ListenerStats {
        self.inner.stats()
    }

    async fn close(&mut self) {
        self.inner.close().await;
        *lock(&self.stats) = self.inner.stats();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcraps_transport_core::Keypair;
    use bitcraps_transport_tcp::TcpTransport;

    #[tokio::test]
    async fn dial_failures_are_counted_and_matched_once() {
        let observer = Observer::new(Output::discard(), Duration::from_secs(5));
        let tcp = observer.wrap(Arc::new(TcpTransport::new(Keypair::generate())));
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let addr: TransportAddress = format!("tcp://127.0.0.1:{port}").parse().unwrap();
        let Err(error) = tcp.dial(&addr, None).await else {
            panic!("dialed a closed port")
        };
        assert_eq!(observer.dial_failures(), 1);
        let text = format!("dial {addr}: {error}");
        assert!(observer.already_reported(&text));
        assert!(!observer.already_reported(&text));
    }

    #[tokio::test]
    async fn listener_counters_are_mirrored_after_close() {
        let observer = Observer::new(Output::discard(), Duration::from_secs(5));
        let server = Keypair::generate();
        let id = server.peer_id();
        let tcp = observer.wrap(Arc::new(TcpTransport::new(server)));
        let mut listener = tcp
            .listen(&"tcp://127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let addr = listener.local_addr().clone();
        let client = observer.wrap(Arc::new(TcpTransport::new(Keypair::generate())));
        let dial = tokio::spawn(async move { client.dial(&addr, Some(id)).await });
        let accepted = listener.accept_connection().await.unwrap();
        let conn = dial.await.unwrap().unwrap();
        listener.close().await;
        let stats = observer.listener_stats();
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].1.accepted, 1);
        let open = observer.open_outbound();
        assert_eq!(open.len(), 1);
        conn.close("done").await.unwrap();
        drop(accepted);
        let unclean = closed_cleanly(open, Duration::from_secs(5)).await;
        assert!(unclean.is_empty(), "{unclean:?}");
        assert!(observer.open_outbound().is_empty());
    }
}
