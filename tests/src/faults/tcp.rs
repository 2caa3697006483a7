//! The TCP fault proxy: accepts on `127.0.0.1:0`, connects each client to the target, and pumps
//! both directions through the profile's faults (see the table in [`super`]): every read chunk
//! is corrupted per byte, delayed and paced, and the path is cut after `cut_after` bytes from
//! the dialer (both sockets closed with a FIN, as a dead middlebox would leave them: no close
//! record follows).

use std::io;
use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use super::{Dice, Faults, Pacer};

/// Chunks read at a time.
const CHUNK: usize = 16 * 1024;
/// Chunks queued between a direction's reader and its writer (bounded: backpressure).
const QUEUE: usize = 64;

/// A running TCP proxy; stops (and cuts every path) when dropped.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts a proxy to `target` with `faults`, the cut counted on `cut_after` bytes.
    pub async fn start(target: SocketAddr, faults: Faults, cut_after: u64) -> io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let mut paths = tokio::task::JoinSet::new();
            let mut id = 0u64;
            loop {
                tokio::select! {
                    Some(_) = paths.join_next(), if !paths.is_empty() => {}
                    accepted = listener.accept() => {
                        let Ok((client, _)) = accepted else { continue };
                        id += 1;
                        paths.spawn(path(client, target, faults, cut_after, id));
                    }
                }
            }
        });
        Ok(Self { addr, task })
    }

    /// Where dialers connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What a direction's reader hands its writer.
enum Item {
    Bytes(tokio::time::Instant, Vec<u8>),
    /// Write what came before, then cut the whole path.
    Cut,
}

async fn path(client: TcpStream, target: SocketAddr, faults: Faults, cut_after: u64, id: u64) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let (cut_tx, cut_rx) = watch::channel(false);
    let up = direction(
        client_r,
        server_w,
        Dice::new(faults, 1, id),
        &faults,
        cut_after,
        cut_tx.clone(),
        cut_rx.clone(),
    );
    let down = direction(
        server_r,
        client_w,
        Dice::new(faults, 2, id),
        &faults,
        0,
        cut_tx,
        cut_rx,
    );
    tokio::join!(up, down);
}

/// One direction: a reader applying the faults and a writer honouring due times.
async fn direction(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    mut dice: Dice,
    faults: &Faults,
    cut_after: u64,
    cut_tx: watch::Sender<bool>,
    mut cut_rx: watch::Receiver<bool>,
) {
    let (tx, mut rx) = mpsc::channel::<Item>(QUEUE);
    let mut pacer = Pacer::new(faults);
    let mut reader_cut = cut_rx.clone();
    let reader = async move {
        let mut forwarded = 0u64;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = tokio::select! {
                _ = reader_cut.wait_for(|cut| *cut) => return,
                n = from.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                },
            };
            let mut chunk = buf[..n].to_vec();
            let mut cut_now = false;
            if cut_after > 0 {
                let left = cut_after.saturating_sub(forwarded);
                if (n as u64) >= left {
                    chunk.truncate(left as usize);
                    cut_now = true;
                }
            }
            forwarded += chunk.len() as u64;
            dice.corrupt(&mut chunk);
            let due = pacer.due(chunk.len());
            if !chunk.is_empty() && tx.send(Item::Bytes(due, chunk)).await.is_err() {
                return;
            }
            if cut_now {
                let _ = tx.send(Item::Cut).await;
                return;
            }
        }
    };
    let writer = async move {
        loop {
            let item = tokio::select! {
                _ = cut_rx.wait_for(|cut| *cut) => return,
                item = rx.recv() => item,
            };
            match item {
                Some(Item::Bytes(due, bytes)) => {
                    tokio::time::sleep_until(due).await;
                    if to.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Item::Cut) => {
                    let _ = to.flush().await;
                    let _ = cut_tx.send(true);
                    return;
                }
                None => {
                    // The source ended cleanly: pass the FIN on.
                    let _ = to.shutdown().await;
                    return;
                }
            }
        }
    };
    tokio::join!(reader, writer);
}
