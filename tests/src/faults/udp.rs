//! The UDP fault proxy: one front socket on `127.0.0.1:0`; each client address gets its own
//! back socket connected to the target (at most [`MAX_SESSIONS`]), and every datagram, both
//! ways, goes through the profile's faults (see the table in [`super`]): dropped, duplicated,
//! held back behind the next one, corrupted, delayed and paced; after `cut_after` datagrams from
//! the client nothing more is forwarded either way.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use super::{Dice, Faults, Pacer};

/// Client addresses served at once (more are ignored).
pub const MAX_SESSIONS: usize = 256;
/// Datagrams queued per direction; a full queue drops (a router's queue would too).
const QUEUE: usize = 1024;
/// A datagram held back for reordering is sent at the latest this much later.
const HOLD: Duration = Duration::from_millis(5);

/// A running UDP proxy; stops when dropped.
#[derive(Debug)]
pub struct UdpProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl UdpProxy {
    /// Starts a proxy to `target` with `faults`, cutting each session after `cut_after`
    /// datagrams from its client (0: never).
    pub async fn start(target: SocketAddr, faults: Faults, cut_after: u64) -> io::Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
        let addr = front.local_addr()?;
        let task = tokio::spawn(run(front, target, faults, cut_after));
        Ok(Self { addr, task })
    }

    /// Where dialers send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for UdpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    up: mpsc::Sender<Vec<u8>>,
    count: u64,
    cut: Arc<AtomicBool>,
}

async fn run(front: Arc<UdpSocket>, target: SocketAddr, faults: Faults, cut_after: u64) {
    let mut sessions: HashMap<SocketAddr, Session> = HashMap::new();
    let mut tasks = JoinSet::new();
    let mut buf = vec![0u8; 65536];
    let mut id = 0u64;
    loop {
        let (n, client) = tokio::select! {
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            r = front.recv_from(&mut buf) => match r {
                Ok(r) => r,
                Err(_) => continue,
            },
        };
        if !sessions.contains_key(&client) {
            if sessions.len() >= MAX_SESSIONS {
                continue;
            }
            let Ok(back) = UdpSocket::bind("127.0.0.1:0").await else {
                continue;
            };
            if back.connect(target).await.is_err() {
                continue;
            }
            id += 1;
            let back = Arc::new(back);
            let cut = Arc::new(AtomicBool::new(false));
            let (up_tx, up_rx) = mpsc::channel(QUEUE);
            let send_back = back.clone();
            tasks.spawn(forward(
                up_rx,
                Dice::new(faults, 1, id),
                faults,
                cut.clone(),
                move |d| {
                    let s = send_back.clone();
                    async move {
                        let _ = s.send(&d).await;
                    }
                },
            ));
            let (down_tx, down_rx) = mpsc::channel(QUEUE);
            let to_client = front.clone();
            tasks.spawn(forward(
                down_rx,
                Dice::new(faults, 2, id),
                faults,
                cut.clone(),
                move |d| {
                    let s = to_client.clone();
                    async move {
                        let _ = s.send_to(&d, client).await;
                    }
                },
            ));
            tasks.spawn(receive(back, down_tx, cut.clone()));
            sessions.insert(
                client,
                Session {
                    up: up_tx,
                    count: 0,
                    cut,
                },
            );
        }
        let Some(session) = sessions.get_mut(&client) else {
            continue;
        };
        session.count += 1;
        if cut_after > 0 && session.count > cut_after {
            session.cut.store(true, Ordering::Relaxed);
            continue;
        }
        let _ = session.up.try_send(buf[..n].to_vec());
    }
}

/// Reads the target's answers for one session.
async fn receive(back: Arc<UdpSocket>, down: mpsc::Sender<Vec<u8>>, cut: Arc<AtomicBool>) {
    let mut buf = vec![0u8; 65536];
    while let Ok(n) = back.recv(&mut buf).await {
        if cut.load(Ordering::Relaxed) {
            continue;
        }
        let _ = down.try_send(buf[..n].to_vec());
    }
}

/// Applies the faults to one direction's datagrams and sends each when due.
async fn forward<F, Fut>(
    mut rx: mpsc::Receiver<Vec<u8>>,
    mut dice: Dice,
    faults: Faults,
    cut: Arc<AtomicBool>,
    send: F,
) where
    F: Fn(Vec<u8>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut pacer = Pacer::new(&faults);
    let mut held: Option<(Instant, Vec<u8>)> = None;
    let mut due_queue: std::collections::VecDeque<(Instant, Vec<u8>)> = Default::default();
    loop {
        let next_due = due_queue.front().map(|(t, _)| *t);
        let hold_until = held.as_ref().map(|(t, _)| *t);
        tokio::select! {
            datagram = rx.recv() => {
                let Some(mut datagram) = datagram else { return };
                if dice.drop() {
                    continue;
                }
                dice.corrupt(&mut datagram);
                let copies = if dice.duplicate() { 2 } else { 1 };
                let due = pacer.due(datagram.len());
                if held.is_none() && dice.reorder() {
                    held = Some((Instant::now() + HOLD, datagram));
                    continue;
                }
                if due_queue.len() >= QUEUE {
                    // Over the bandwidth for too long: the queue is full, the datagram is lost.
                    continue;
                }
                for _ in 0..copies {
                    due_queue.push_back((due, datagram.clone()));
                }
                if let Some((_, late)) = held.take() {
                    due_queue.push_back((due, late));
                }
            }
            _ = tokio::time::sleep_until(hold_until.unwrap_or_else(far)), if hold_until.is_some() => {
                if let Some((t, late)) = held.take() {
                    due_queue.push_back((t, late));
                }
            }
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(far)), if next_due.is_some() => {
                while let Some((t, _)) = due_queue.front() {
                    if *t > Instant::now() {
                        break;
                    }
                    let Some((_, datagram)) = due_queue.pop_front() else { break };
                    if !cut.load(Ordering::Relaxed) {
                        send(datagram).await;
                    }
                }
            }
        }
    }
}

fn far() -> Instant {
    Instant::now() + Duration::from_secs(3600)
}
