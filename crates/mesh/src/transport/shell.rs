//! The mesh task: a thin shell around the sans-IO engine. It owns the engine, the direct links
//! and the virtual connections; it feeds the engine what arrives (commands, packets on direct
//! links, messages written to virtual connections, the timer) and carries out its actions.
//! It never waits on a peer: a full queue anywhere drops (and counts) the item, because
//! nothing in the mesh promises delivery and the coordinator above retransmits.

use std::collections::HashMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Instant;

use bitcraps_transport_core::backend::ListenerCounters;
use bitcraps_transport_core::{
    Bytes, ChannelConfig, Connection, ConnectionInfo, Error, Inbound, Keypair, LimitKind, PeerId,
    Result, TransportAddress,
};
use tokio::sync::{mpsc, oneshot};

mod links;

use super::virtual_conn::{self, MeshListener, VcEvent, VcInput, VirtualEntry};
use super::{
    limit, MeshBroadcast, MeshTransportConfig, MeshTransportError, MeshTransportStats, KIND,
};
use crate::{frame, Action, Destination, LinkId, Mesh, SendError};
use links::{DirectLink, LinkEvent};

/// Commands the mesh task takes from [`super::MeshTransport`] handles.
pub(crate) enum Command {
    AddLink {
        conn: Connection,
        reply: oneshot::Sender<std::result::Result<(), MeshTransportError>>,
    },
    Dial {
        peer: PeerId,
        reply: oneshot::Sender<Result<Connection>>,
    },
    Listen(oneshot::Sender<MeshListener>),
    Broadcast {
        payload: Bytes,
        reply: oneshot::Sender<std::result::Result<(), SendError>>,
    },
    Stats(oneshot::Sender<MeshTransportStats>),
}

/// Capacity of the command queue and of the direct links' shared packet queue.
const QUEUE: usize = 256;
/// Listeners open at once; older closed ones are forgotten first.
const MAX_LISTENERS: usize = 4;

pub(crate) fn clock() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Starts the mesh task. Returns its command queue and the broadcast stream.
pub(crate) fn spawn(
    keypair: Keypair,
    config: MeshTransportConfig,
    seed: [u8; 32],
) -> std::result::Result<(mpsc::Sender<Command>, mpsc::Receiver<MeshBroadcast>), MeshTransportError>
{
    let me = keypair.peer_id();
    let mesh = Mesh::new(keypair, config.mesh.clone(), seed)?;
    let (commands, commands_rx) = mpsc::channel(QUEUE);
    let (link_tx, link_rx) = mpsc::channel(QUEUE);
    let (vc_tx, vc_rx) = mpsc::channel(QUEUE);
    let (broadcast_tx, broadcast_rx) = mpsc::channel(config.broadcast_queue.max(1));
    let shell = Shell {
        mesh,
        me,
        channel: config.channel(),
        config,
        links: HashMap::new(),
        next_link: 1,
        virtuals: HashMap::new(),
        next_vc: 1,
        listeners: Vec::new(),
        link_tx,
        vc_tx,
        broadcast_tx,
        stats: MeshTransportStats::default(),
    };
    tokio::spawn(shell.run(commands_rx, link_rx, vc_rx));
    Ok((commands, broadcast_rx))
}

struct Shell {
    mesh: Mesh,
    me: PeerId,
    config: MeshTransportConfig,
    channel: ChannelConfig,
    links: HashMap<LinkId, DirectLink>,
    next_link: u64,
    virtuals: HashMap<PeerId, VirtualEntry>,
    next_vc: u64,
    listeners: Vec<(mpsc::Sender<Inbound>, Arc<ListenerCounters>)>,
    link_tx: mpsc::Sender<LinkEvent>,
    vc_tx: mpsc::Sender<VcEvent>,
    broadcast_tx: mpsc::Sender<MeshBroadcast>,
    stats: MeshTransportStats,
}

impl Shell {
    async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut link_rx: mpsc::Receiver<LinkEvent>,
        mut vc_rx: mpsc::Receiver<VcEvent>,
    ) {
        let mut timer = pin!(tokio::time::sleep_until(tokio::time::Instant::now()));
        loop {
            self.carry_out();
            let deadline = self.deadline();
            if let Some(at) = deadline {
                timer.as_mut().reset(tokio::time::Instant::from_std(at));
            }
            tokio::select! {
                cmd = commands.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                Some(event) = link_rx.recv() => self.link_event(event),
                Some(event) = vc_rx.recv() => self.vc_event(event),
                _ = &mut timer, if deadline.is_some() => {
                    let now = clock();
                    self.mesh.handle_timeout(now);
                    self.expire_idle(now);
                }
            }
        }
        for (_, v) in self.virtuals.drain() {
            v.end(Error::LinkLost("the mesh transport has stopped".into()));
        }
    }

    /// The engine's next timer, or the first virtual connection to expire.
    fn deadline(&self) -> Option<Instant> {
        let idle = self.config.virtual_idle_timeout;
        let expiry = self.virtuals.values().map(|v| v.last_heard + idle).min();
        match (self.mesh.poll_timeout(), expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn carry_out(&mut self) {
        while let Some(action) = self.mesh.poll_action() {
            match action {
                Action::Transmit { link, bytes } => self.transmit(link, bytes),
                Action::Deliver {
                    origin,
                    destination,
                    hops,
                    payload,
                    ..
                } => {
                    let Some(payload) = self.unframe(&payload) else {
                        continue;
                    };
                    if destination != Destination::Broadcast {
                        self.deliver_directed(origin, payload);
                        continue;
                    }
                    let b = MeshBroadcast {
                        origin,
                        hops,
                        payload,
                    };
                    if self.broadcast_tx.try_send(b).is_err() {
                        self.stats.dropped_broadcasts += 1;
                    }
                }
            }
        }
    }

    /// The message inside a received payload, if its frame is well formed and fresh.
    fn unframe(&mut self, payload: &Bytes) -> Option<Bytes> {
        let window = frame::freshness(self.config.mesh.dedup_expiry);
        match frame::decode(payload, frame::now_ms(), window) {
            Ok(message) => Some(message),
            Err(e) => {
                tracing::debug!(error = %e, "mesh payload refused");
                self.stats.refused_frames += 1;
                None
            }
        }
    }

    fn info(&self, peer: PeerId, outbound: bool) -> ConnectionInfo {
        ConnectionInfo {
            local_peer: self.me,
            remote_peer: peer,
            local_addr: TransportAddress::Mesh(self.me),
            remote_addr: TransportAddress::Mesh(peer),
            kind: KIND,
            outbound,
        }
    }

    fn open(&mut self, peer: PeerId, outbound: bool) -> Connection {
        let id = self.next_vc;
        self.next_vc += 1;
        let info = self.info(peer, outbound);
        let (conn, entry) = virtual_conn::open(
            info,
            &self.channel,
            self.config.virtual_queue,
            id,
            self.vc_tx.clone(),
            clock(),
        );
        self.virtuals.insert(peer, entry);
        conn
    }

    /// A directed payload for us from `origin`: into its virtual connection, or a new inbound
    /// one for the first listener with room.
    fn deliver_directed(&mut self, origin: PeerId, payload: Bytes) {
        self.virtuals.retain(|_, v| !v.tx.is_closed());
        if let Some(v) = self.virtuals.get_mut(&origin) {
            v.last_heard = clock();
            if v.tx.try_send(VcInput::Data(payload)).is_err() {
                self.stats.dropped_deliveries += 1;
            }
            return;
        }
        self.listeners.retain(|(tx, _)| !tx.is_closed());
        if self.virtuals.len() >= self.config.max_virtual_connections {
            self.stats.dropped_deliveries += 1;
            return;
        }
        let Some((tx, counters)) = self.listeners.first().cloned() else {
            self.stats.dropped_deliveries += 1;
            return;
        };
        let Ok(permit) = tx.try_reserve() else {
            self.stats.dropped_deliveries += 1;
            return;
        };
        let conn = self.open(origin, false);
        if let Some(v) = self.virtuals.get(&origin) {
            // A fresh queue has room.
            let _ = v.tx.try_send(VcInput::Data(payload));
        }
        permit.send(Inbound::Connection(conn));
        counters.accepted();
    }

    fn command(&mut self, cmd: Command) {
        match cmd {
            Command::AddLink { conn, reply } => {
                let _ = reply.send(self.add_link(conn));
            }
            Command::Dial { peer, reply } => {
                // One virtual connection per peer (nothing on the wire tells two apart): the
                // newest handle takes the peer's packets, and an older one ends.
                self.virtuals.retain(|_, v| !v.tx.is_closed());
                let result = if let Some(old) = self.virtuals.remove(&peer) {
                    old.end(Error::LinkLost(
                        "replaced by a newer mesh connection".into(),
                    ));
                    Ok(self.open(peer, true))
                } else if self.virtuals.len() >= self.config.max_virtual_connections {
                    Err(limit(LimitKind::TotalConnections))
                } else {
                    Ok(self.open(peer, true))
                };
                let _ = reply.send(result);
            }
            Command::Listen(reply) => {
                self.listeners.retain(|(tx, _)| !tx.is_closed());
                if self.listeners.len() >= MAX_LISTENERS {
                    self.listeners.remove(0);
                }
                let (tx, rx) = mpsc::channel(self.config.accept_queue.max(1));
                let counters = Arc::new(ListenerCounters::default());
                self.listeners.push((tx, counters.clone()));
                let _ = reply.send(MeshListener::new(
                    TransportAddress::Mesh(self.me),
                    rx,
                    counters,
                ));
            }
            Command::Broadcast { payload, reply } => {
                let framed = frame::encode(frame::now_ms(), &payload);
                let sent = self.mesh.send(Destination::Broadcast, framed, clock());
                let _ = reply.send(sent.map(drop));
            }
            Command::Stats(reply) => {
                let _ = reply.send(MeshTransportStats {
                    engine: self.mesh.stats(),
                    memory: self.mesh.memory(),
                    direct_links: self.links.len(),
                    virtual_connections: self
                        .virtuals
                        .values()
                        .filter(|v| !v.tx.is_closed())
                        .count(),
                    ..self.stats
                });
            }
        }
    }

    fn vc_event(&mut self, event: VcEvent) {
        match event {
            VcEvent::Send { peer, payload } => {
                let framed = frame::encode(frame::now_ms(), &payload);
                if let Err(e) = self.mesh.send(Destination::Peer(peer), framed, clock()) {
                    tracing::trace!(error = %e, "mesh send refused");
                    self.stats.dropped_transmissions += 1;
                }
            }
            VcEvent::Closed { peer, id } => {
                if self.virtuals.get(&peer).is_some_and(|v| v.id == id) {
                    self.virtuals.remove(&peer);
                }
            }
        }
    }

    fn expire_idle(&mut self, now: Instant) {
        let idle = self.config.virtual_idle_timeout;
        let expired: Vec<PeerId> = self
            .virtuals
            .iter()
            .filter(|(_, v)| now >= v.last_heard + idle)
            .map(|(p, _)| *p)
            .collect();
        for peer in expired {
            if let Some(v) = self.virtuals.remove(&peer) {
                v.end(Error::LinkLost(
                    "no mesh packet from the peer within the idle timeout".into(),
                ));
            }
        }
    }
}
