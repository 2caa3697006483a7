//! How the demo's players find the table: by LAN discovery. The table announces its ticket
//! (peer id and every route) over mDNS on the loopback interface, under a service type of this
//! run's own; each player browses with a discovery service of its own and takes the first
//! table it hears. The ticket is only a hint: the player dials expecting the announced peer
//! id, so the handshake proves it is the table.

use std::time::Duration;

use anyhow::{Context, Result};
use bitcraps_coordinator::TransportCoordinator;
use bitcraps_discovery::{Discovery, DiscoveryConfig, Interfaces, MdnsConfig, MdnsDiscovery};
use bitcraps_transport_core::Ticket;

/// How long a player looks for the table before the demo gives up.
const FIND_TIMEOUT: Duration = Duration::from_secs(15);

/// This run's service type (a DNS-SD service name is at most 15 characters), so two demos
/// on one machine, or other bitcraps nodes, never mix.
pub(super) fn service_type() -> String {
    format!("_bcdemo{:04x}._udp.local.", std::process::id() & 0xffff)
}

fn mdns(service_type: &str, announce: bool) -> MdnsConfig {
    let mut c = MdnsConfig::default();
    c.service_type = service_type.to_string();
    // One process, one machine: every packet stays on the loopback interface.
    c.interfaces = Interfaces::Loopback;
    c.announce = announce;
    c.browse = !announce;
    c
}

/// The table's announcement; [`Announcement::withdraw`] says goodbye.
#[derive(Debug)]
pub(super) struct Announcement {
    _discovery: Discovery,
    mdns: MdnsDiscovery,
}

impl Announcement {
    /// Announces `ticket` for `table`.
    pub(super) fn start(
        table: &TransportCoordinator,
        ticket: &Ticket,
        service_type: &str,
    ) -> Result<Self> {
        let discovery = Discovery::start(table.clone(), DiscoveryConfig::default());
        let mdns = MdnsDiscovery::start(&discovery, Some(ticket), mdns(service_type, true))
            .context("announce the table over mDNS (loopback)")?;
        Ok(Self {
            _discovery: discovery,
            mdns,
        })
    }

    /// Withdraws the announcement.
    pub(super) async fn withdraw(self) {
        self.mdns.shutdown().await;
    }
}

/// Waits (at most [`FIND_TIMEOUT`]) until `player` hears a table and returns its ticket.
pub(super) async fn find_table(
    player: &TransportCoordinator,
    service_type: &str,
) -> Result<Ticket> {
    // Reports only: the player dials the table itself, on the routes it chooses.
    let discovery = Discovery::start(player.clone(), DiscoveryConfig::default());
    let mdns = MdnsDiscovery::start(&discovery, None, mdns(service_type, false))
        .context("browse for the table over mDNS (loopback)")?;
    let found = tokio::time::timeout(FIND_TIMEOUT, discovery.wait_for_peer(|_| true)).await;
    mdns.shutdown().await;
    let found = found.with_context(|| {
        format!("no table heard over mDNS on the loopback interface within {FIND_TIMEOUT:?}")
    })?;
    Ok(Ticket::new(found.peer, found.routes)?)
}
