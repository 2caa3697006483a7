//! A UDP relay in front of the demo's QUIC listener that can go dark: while dark it drops every
//! datagram both ways, like a radio out of range. Nothing tells the coordinators; they notice
//! by themselves (unanswered probes), which is what the demo shows.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use tokio::net::UdpSocket;
use tokio::task::JoinHandle;

/// The relay: datagrams to [`Blackhole::addr`] go to the target, answers come back, unless dark.
pub(crate) struct Blackhole {
    addr: SocketAddr,
    dark: Arc<AtomicBool>,
    tasks: [JoinHandle<()>; 2],
}

impl Blackhole {
    /// Relays loopback datagrams to `target` (one client at a time: the last one heard).
    pub(crate) async fn start(target: SocketAddr) -> Result<Self> {
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").await.context("bind relay")?);
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").await.context("bind relay")?);
        back.connect(target).await.context("relay target")?;
        let addr = front.local_addr()?;
        let dark = Arc::new(AtomicBool::new(false));
        let client = Arc::new(Mutex::new(None::<SocketAddr>));
        let up = {
            let (front, back, dark, client) =
                (front.clone(), back.clone(), dark.clone(), client.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok((n, from)) = front.recv_from(&mut buf).await {
                    *client.lock().expect("relay lock") = Some(from);
                    if !dark.load(Ordering::Relaxed) {
                        let _ = back.send(&buf[..n]).await;
                    }
                }
            })
        };
        let down = {
            let dark = dark.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65_536];
                while let Ok(n) = back.recv(&mut buf).await {
                    let to = *client.lock().expect("relay lock");
                    if let (Some(to), false) = (to, dark.load(Ordering::Relaxed)) {
                        let _ = front.send_to(&buf[..n], to).await;
                    }
                }
            })
        };
        Ok(Self {
            addr,
            dark,
            tasks: [up, down],
        })
    }

    /// Where clients send.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Drops (true) or relays (false) from now on.
    pub(crate) fn set_dark(&self, dark: bool) {
        self.dark.store(dark, Ordering::Relaxed);
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}
