//! Virtual connections: a `Connection` to a peer anywhere in the mesh, and the listener that
//! hands out the inbound ones.
//!
//! Each virtual connection has a small task that moves its outgoing messages to the mesh task
//! (which seals each into one directed packet) and the messages the mesh task delivers into
//! its receive queue. Nothing is added to the bytes: a virtual connection's message is exactly
//! the plaintext of one directed mesh packet, and the connection is named by the pair (origin,
//! destination). A `close` is local (no packet is sent): the coordinator above ends its session
//! with its own `CLOSE` envelope, and the remote's virtual connection ends after its idle
//! timeout.

use std::sync::Arc;
use std::time::Instant;

use bitcraps_transport_core::backend::{new_connection, ConnectionIo, ListenerCounters, SendItem};
use bitcraps_transport_core::{
    async_trait, Bytes, ChannelConfig, Connection, ConnectionInfo, Error, Inbound, Listener,
    ListenerStats, PeerId, Result, TransportAddress,
};
use tokio::sync::mpsc;

/// What a virtual connection's task tells the mesh task.
pub(crate) enum VcEvent {
    /// Send this message to the peer as one directed packet.
    Send { peer: PeerId, payload: Bytes },
    /// The connection `id` to `peer` ended; forget it.
    Closed { peer: PeerId, id: u64 },
}

/// What the mesh task gives a virtual connection's task.
pub(crate) enum VcInput {
    /// A message from the peer.
    Data(Bytes),
    /// The connection ends with this error.
    End(Error),
}

/// The mesh task's record of one virtual connection.
pub(crate) struct VirtualEntry {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<VcInput>,
    /// When the last packet from the peer arrived (or the connection opened).
    pub(crate) last_heard: Instant,
}

impl VirtualEntry {
    /// Ends the connection with `error` (or, if its queue is full, as a lost state).
    pub(crate) fn end(self, error: Error) {
        let _ = self.tx.try_send(VcInput::End(error));
    }
}

/// Builds a virtual connection and spawns its task.
pub(crate) fn open(
    info: ConnectionInfo,
    channel: &ChannelConfig,
    queue: usize,
    id: u64,
    to_shell: mpsc::Sender<VcEvent>,
    now: Instant,
) -> (Connection, VirtualEntry) {
    let peer = info.remote_peer;
    let (conn, io) = new_connection(info, channel);
    let (tx, rx) = mpsc::channel(queue.max(1));
    tokio::spawn(run(io, peer, id, to_shell, rx));
    (
        conn,
        VirtualEntry {
            id,
            tx,
            last_heard: now,
        },
    )
}

async fn run(
    io: ConnectionIo,
    peer: PeerId,
    id: u64,
    to_shell: mpsc::Sender<VcEvent>,
    mut inputs: mpsc::Receiver<VcInput>,
) {
    let ConnectionIo {
        mut send_queue,
        incoming,
        state,
    } = io;
    let failure = loop {
        tokio::select! {
            biased;
            _ = state.wait_aborted() => break None,
            item = send_queue.recv() => match item {
                Some(SendItem::Message(payload)) => {
                    let len = payload.len();
                    if to_shell.send(VcEvent::Send { peer, payload }).await.is_err() {
                        break Some(Error::LinkLost("the mesh transport has stopped".into()));
                    }
                    state.record_sent(len);
                }
                Some(SendItem::Close(reason)) => {
                    state.set_local_closing(&reason);
                    break None;
                }
                None => {
                    state.set_local_closing("connection dropped");
                    break None;
                }
            },
            input = inputs.recv() => match input {
                Some(VcInput::Data(m)) => {
                    // Waits while the application's receive budget is full (the mesh task
                    // meanwhile drops what overflows this connection's queue), or until a
                    // close that timed out aborts the connection.
                    tokio::select! {
                        biased;
                        _ = state.wait_aborted() => break None,
                        _ = incoming.deliver(m) => {}
                    }
                }
                Some(VcInput::End(error)) => break Some(error),
                None => break Some(Error::LinkLost("the mesh transport dropped the connection".into())),
            },
        }
    };
    drop(inputs);
    let _ = to_shell.try_send(VcEvent::Closed { peer, id });
    drop(incoming);
    state.end_reading(failure);
    state.finish();
}

/// The listener of a mesh transport: one inbound virtual connection per new origin.
pub(crate) struct MeshListener {
    local: TransportAddress,
    rx: mpsc::Receiver<Inbound>,
    counters: Arc<ListenerCounters>,
}

impl MeshListener {
    pub(crate) fn new(
        local: TransportAddress,
        rx: mpsc::Receiver<Inbound>,
        counters: Arc<ListenerCounters>,
    ) -> Self {
        Self {
            local,
            rx,
            counters,
        }
    }
}

#[async_trait]
impl Listener for MeshListener {
    fn local_addr(&self) -> &TransportAddress {
        &self.local
    }

    async fn accept(&mut self) -> Result<Inbound> {
        self.rx.recv().await.ok_or(Error::ListenerClosed)
    }

    fn stats(&self) -> ListenerStats {
        self.counters.stats()
    }

    async fn close(&mut self) {
        self.rx.close();
    }
}
