//! [`MemoryNetwork`]: the in-process "wire" where memory transports listen and dial.

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::DuplexStream;
use tokio::sync::mpsc;

use bitcraps_transport_core::refusal::send_refusal;
use bitcraps_transport_core::stream::{AcceptedStream, RawStream, RefusalTask, StreamAcceptor};
use bitcraps_transport_core::LimitRejection;
use bitcraps_transport_core::{Error, Result, SourceKey, TransportAddress};

use crate::stream::MemoryStream;

/// Bytes buffered in each direction of an in-memory pipe.
const PIPE_BYTES: usize = 64 * 1024;
/// Raw connections waiting for a listener's accept loop (its backlog).
const BACKLOG: usize = 128;
/// Listeners one network may hold.
const MAX_LISTENERS: usize = 65_536;

struct Pending {
    stream: MemoryStream,
    from: u64,
}

#[derive(Default)]
struct State {
    listeners: HashMap<u64, mpsc::Sender<Pending>>,
}

/// An isolated in-process network. Cloning gives another handle on the same network.
#[derive(Clone, Default)]
pub struct MemoryNetwork {
    state: Arc<Mutex<State>>,
    next: Arc<AtomicU64>,
}

impl std::fmt::Debug for MemoryNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryNetwork").finish_non_exhaustive()
    }
}

impl MemoryNetwork {
    /// A new, empty network.
    pub fn new() -> Self {
        Self {
            state: Arc::default(),
            next: Arc::new(AtomicU64::new(1)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn allocate_id(&self) -> u64 {
        // Ids start high so they never collide with the small ports tests ask for.
        (1 << 32) + self.next.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn bind(&self, port: u64) -> Result<MemoryAcceptor> {
        let mut state = self.lock();
        state.listeners.retain(|_, tx| !tx.is_closed());
        if state.listeners.len() >= MAX_LISTENERS {
            return Err(Error::io(
                "memory bind",
                io::Error::other("too many memory listeners"),
            ));
        }
        let port = if port == 0 { self.allocate_id() } else { port };
        if state.listeners.get(&port).is_some_and(|tx| !tx.is_closed()) {
            return Err(Error::io(
                "memory bind",
                io::Error::from(io::ErrorKind::AddrInUse),
            ));
        }
        let (tx, rx) = mpsc::channel(BACKLOG);
        state.listeners.insert(port, tx);
        Ok(MemoryAcceptor {
            port,
            incoming: rx,
            network: self.clone(),
        })
    }

    fn unbind(&self, port: u64) {
        let mut state = self.lock();
        if state.listeners.get(&port).is_some_and(|tx| tx.is_closed()) {
            state.listeners.remove(&port);
        }
    }

    /// Opens a raw (unsecured) byte stream to the listener on `port`, as `from` would. For
    /// tests that speak bytes to a listener: garbage, stalled handshakes, oversized prefixes.
    pub async fn connect_raw(&self, port: u64, from: u64) -> Result<MemoryStream> {
        let sender = self.lock().listeners.get(&port).cloned().ok_or_else(|| {
            Error::io(
                "memory connect",
                io::Error::from(io::ErrorKind::ConnectionRefused),
            )
        })?;
        let (ours_read, theirs_write) = tokio::io::duplex(PIPE_BYTES);
        let (theirs_read, ours_write) = tokio::io::duplex(PIPE_BYTES);
        let theirs = MemoryStream {
            read: theirs_read,
            write: theirs_write,
        };
        sender
            .send(Pending {
                stream: theirs,
                from,
            })
            .await
            .map_err(|_| {
                Error::io(
                    "memory connect",
                    io::Error::from(io::ErrorKind::ConnectionRefused),
                )
            })?;
        Ok(MemoryStream {
            read: ours_read,
            write: ours_write,
        })
    }

    pub(crate) async fn connect(
        &self,
        port: u64,
        from: u64,
    ) -> Result<(DuplexStream, DuplexStream)> {
        Ok(self.connect_raw(port, from).await?.into_split())
    }
}

/// The raw accept side of a memory listener.
pub(crate) struct MemoryAcceptor {
    port: u64,
    incoming: mpsc::Receiver<Pending>,
    network: MemoryNetwork,
}

impl MemoryAcceptor {
    pub(crate) fn port(&self) -> u64 {
        self.port
    }
}

impl Drop for MemoryAcceptor {
    fn drop(&mut self) {
        self.incoming.close();
        self.network.unbind(self.port);
    }
}

impl StreamAcceptor for MemoryAcceptor {
    type Reader = DuplexStream;
    type Writer = DuplexStream;

    async fn accept(&mut self) -> io::Result<AcceptedStream<DuplexStream, DuplexStream>> {
        let pending = self
            .incoming
            .recv()
            .await
            .ok_or_else(|| io::Error::other("memory listener closed"))?;
        let (reader, writer) = pending.stream.into_split();
        Ok(AcceptedStream {
            raw: RawStream {
                reader,
                writer,
                local_addr: TransportAddress::Memory(self.port),
                remote_addr: TransportAddress::Memory(pending.from),
            },
            source: SourceKey::Opaque(pending.from),
        })
    }

    /// The stream refusal frame, as on TCP.
    fn refusal(
        &self,
        stream: AcceptedStream<DuplexStream, DuplexStream>,
        rejection: LimitRejection,
    ) -> Option<RefusalTask> {
        let RawStream { reader, writer, .. } = stream.raw;
        Some(Box::pin(send_refusal(reader, writer, rejection)))
    }
}
