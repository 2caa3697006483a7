//! Discovery on a LAN: two nodes in one process find each other over mDNS (multicast on the
//! loopback interface here, so nothing leaves the machine), connect with no address typed, and exchange a
//! message. Runs to completion on its own (CI runs it): `cargo run -p bitcraps-discovery
//! --example lan`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_coordinator::{CoordinatorEvent, EventStream, Priority, TransportCoordinator};
use bitcraps_discovery::{Discovery, DiscoveryConfig, Interfaces, MdnsConfig, MdnsDiscovery};
use bitcraps_transport_core::{Keypair, Ticket};
use bitcraps_transport_tcp::TcpTransport;

/// Everything must happen within this long, or the example fails.
const DEADLINE: Duration = Duration::from_secs(30);

/// One node: a coordinator listening on TCP, its discovery service and its mDNS source.
struct Node {
    coordinator: TransportCoordinator,
    events: EventStream,
    _discovery: Discovery,
    mdns: MdnsDiscovery,
}

async fn node(service_type: &str) -> Result<Node> {
    let tcp = TcpTransport::new(Keypair::generate());
    let coordinator = TransportCoordinator::builder()
        .transport(Arc::new(tcp))
        .build()?;
    let events = coordinator.events().context("events")?;
    let bound = coordinator.listen(&"tcp://127.0.0.1:0".parse()?).await?;
    // Auto-connect: whoever is discovered is dialed (expecting its announced peer id).
    let discovery = Discovery::start(coordinator.clone(), DiscoveryConfig::auto_connect());
    // Announce our ticket (peer id + the bound route) and browse for the others.
    let ticket = Ticket::new(coordinator.local_peer_id(), vec![bound])?;
    let mut config = MdnsConfig::default();
    config.service_type = service_type.to_string();
    // Both nodes are on this machine: keep every packet on the loopback interface. (On a real
    // LAN leave the default, `Interfaces::All`.)
    config.interfaces = Interfaces::Loopback;
    let mdns = MdnsDiscovery::start(&discovery, Some(&ticket), config)?;
    Ok(Node {
        coordinator,
        events,
        _discovery: discovery,
        mdns,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    // A service type of this run's own keeps other bitcraps nodes on the LAN out of it.
    let service_type = format!("_bcx{:04x}._udp.local.", std::process::id() & 0xffff);
    let mut alice = node(&service_type).await?;
    let bob = node(&service_type).await?;
    let bob_id = bob.coordinator.local_peer_id();
    println!("alice {}", alice.coordinator.local_peer_id());
    println!("bob   {bob_id}");

    // Alice waits for Bob to be discovered and connected (either side may have dialed).
    tokio::time::timeout(DEADLINE, async {
        let mut discovered = false;
        while let Some(event) = alice.events.recv().await {
            match event {
                CoordinatorEvent::PeerDiscovered {
                    peer,
                    routes,
                    source,
                } if peer == bob_id => {
                    println!("alice discovered bob over {source}: {routes:?}");
                    discovered = true;
                }
                CoordinatorEvent::Connected { peer, address } if peer == bob_id => {
                    println!("alice connected to bob ({address})");
                    if discovered {
                        return;
                    }
                }
                _ => {}
            }
            if discovered && alice.coordinator.peers().contains(&bob_id) {
                return;
            }
        }
    })
    .await
    .context("bob was not discovered and connected in time")?;

    // The connection is authenticated: send and wait for the receipt.
    let receipt = alice
        .coordinator
        .send_with_receipt(bob_id, "bet 5 on 7".into(), Priority::Interactive)
        .await?;
    tokio::time::timeout(DEADLINE, receipt)
        .await
        .context("no receipt in time")?
        .map_err(|reason| anyhow::anyhow!("not delivered: {reason}"))?;
    println!("bob's application has alice's message");

    alice.mdns.shutdown().await;
    bob.mdns.shutdown().await;
    alice.coordinator.shutdown(Duration::from_secs(2)).await;
    bob.coordinator.shutdown(Duration::from_secs(2)).await;
    Ok(())
}
