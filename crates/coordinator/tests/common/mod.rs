//! Helpers shared by the coordinator's integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod procfs;

use std::sync::Arc;
use std::time::Duration;

use bitcraps_coordinator::{
    CoordinatorConfig, CoordinatorEvent, EventStream, TransportCoordinator,
};
use bitcraps_transport_core::{
    ChannelConfig, ConnectionLimits, Keypair, PeerId, Transport, TransportAddress,
};
use bitcraps_transport_mem::{MemoryNetwork, MemoryTransport};
use bitcraps_transport_tcp::{TcpConfig, TcpTransport};

/// A guard against hangs only (never a timing assertion).
pub const GUARD: Duration = Duration::from_secs(60);

/// A copy of a keypair (to give several transports one identity).
pub fn copy(k: &Keypair) -> Keypair {
    Keypair::from_secret_bytes(k.secret_bytes())
}

/// A memory transport with no transport-level limits (the coordinator's are under test).
pub fn mem(net: &MemoryNetwork, k: &Keypair) -> Arc<dyn Transport> {
    Arc::new(MemoryTransport::with_config(
        net,
        copy(k),
        ChannelConfig::default(),
        ConnectionLimits::unlimited(),
    ))
}

/// A TCP transport with no transport-level limits.
pub fn tcp(k: &Keypair) -> Arc<dyn Transport> {
    Arc::new(TcpTransport::with_config(
        copy(k),
        TcpConfig {
            limits: ConnectionLimits::unlimited(),
            ..TcpConfig::default()
        },
    ))
}

/// A test configuration: no receive rate limit.
pub fn config() -> CoordinatorConfig {
    let mut c = CoordinatorConfig::default();
    c.rate_limits = bitcraps_transport_core::policy::RateLimits::unlimited();
    c
}

/// A coordinator over the given transports, with its event stream.
pub fn node(
    transports: Vec<Arc<dyn Transport>>,
    config: CoordinatorConfig,
) -> (TransportCoordinator, EventStream) {
    let mut b = TransportCoordinator::builder().config(config);
    for t in transports {
        b = b.transport(t);
    }
    let c = b.build().expect("build");
    let events = c.events().expect("events");
    (c, events)
}

/// A memory-only coordinator listening on `memory://0`.
pub async fn mem_node(
    net: &MemoryNetwork,
    config: CoordinatorConfig,
) -> (TransportCoordinator, EventStream, TransportAddress, Keypair) {
    let k = Keypair::generate();
    let (c, e) = node(vec![mem(net, &k)], config);
    let addr = c
        .listen(&TransportAddress::Memory(0))
        .await
        .expect("listen");
    (c, e, addr, k)
}

/// Waits for the first event matching `f` (other events are skipped), with the guard.
pub async fn wait_for<T>(
    events: &mut EventStream,
    mut f: impl FnMut(&CoordinatorEvent) -> Option<T>,
) -> T {
    tokio::time::timeout(GUARD, async {
        loop {
            let e = events.recv().await.expect("event stream ended");
            if std::env::var_os("COORD_DEBUG").is_some() {
                eprintln!("[{:?}] {e:?}", tokio::time::Instant::now());
            }
            if let Some(t) = f(&e) {
                return t;
            }
        }
    })
    .await
    .expect("event did not come")
}

/// Waits for the next `DataReceived` from `peer`.
pub async fn next_data(events: &mut EventStream, peer: PeerId) -> bytes::Bytes {
    wait_for(events, |e| match e {
        CoordinatorEvent::DataReceived { peer: p, data } if *p == peer => Some(data.clone()),
        _ => None,
    })
    .await
}

/// A message carrying `i`.
pub fn msg(i: u32) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(&i.to_be_bytes())
}

/// The `i` a message carries.
pub fn num(b: &[u8]) -> u32 {
    u32::from_be_bytes(b[..4].try_into().expect("4 bytes"))
}
