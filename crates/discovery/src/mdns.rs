//! [`MdnsDiscovery`]: LAN discovery over multicast DNS / DNS-SD (RFC 6762/6763) with the
//! `mdns-sd` crate. The node registers one service instance of type `_bitcraps._udp.local.`
//! whose TXT record carries its ticket ([`crate::txt`]), and browses for the others; each
//! resolved instance becomes a [`DiscoveryInput::Announce`] (routes on an unspecified address
//! such as `0.0.0.0` take the addresses the instance resolved to), each removal a
//! [`DiscoveryInput::Withdraw`]. Instance names, hosts and addresses are not trusted: only the
//! ticket's peer id counts, and the handshake proves it.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bitcraps_coordinator::DiscoverySource;
use bitcraps_transport_core::{PeerId, Ticket, TransportAddress, MAX_TICKET_ROUTES};
use mdns_sd::{IfKind, ResolvedService, ServiceDaemon, ServiceEvent, ServiceInfo};
use tokio::task::JoinHandle;

use crate::service::DiscoverySender;
use crate::txt::{self, TxtError};
use crate::{Discovery, DiscoveryInput, SERVICE_TYPE};

/// How often the peers mDNS still has are re-offered to the table (mDNS reports a peer once
/// and then only its removal; the table's lifetime is a backstop).
const REFRESH: Duration = Duration::from_secs(30);
/// How long `shutdown` waits for the goodbye to go out.
const GOODBYE_WAIT: Duration = Duration::from_secs(1);

/// Settings of the mDNS source.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct MdnsConfig {
    /// The DNS-SD service type (default [`SERVICE_TYPE`]); another type keeps a group of
    /// nodes apart from the rest of the LAN (tests use one each).
    pub service_type: String,
    /// Announce this node (needs a ticket).
    pub announce: bool,
    /// Browse for other nodes.
    pub browse: bool,
    /// Instances remembered at most (their removal is watched); more are ignored.
    pub max_services: usize,
    /// The network interfaces mDNS uses.
    pub interfaces: Interfaces,
}

/// Which network interfaces mDNS sends and listens on.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interfaces {
    /// Every interface (the LAN).
    All,
    /// The loopback interface only: nothing leaves the machine (tests, several nodes on one
    /// host).
    Loopback,
    /// These interfaces only, by name (e.g. `wlan0`, or a test's veth).
    Named(Vec<String>),
}

impl Default for MdnsConfig {
    fn default() -> Self {
        Self {
            service_type: SERVICE_TYPE.to_string(),
            announce: true,
            browse: true,
            max_services: 64,
            interfaces: Interfaces::All,
        }
    }
}

/// Why the mDNS source could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MdnsError {
    /// The mDNS daemon refused (sockets, a bad service type).
    #[error("mDNS: {0}")]
    Daemon(#[from] mdns_sd::Error),
    /// The ticket cannot be put in a TXT record.
    #[error("the ticket cannot be announced: {0}")]
    Txt(#[from] TxtError),
    /// `announce` is on but no ticket was given.
    #[error("announcing needs a ticket")]
    NoTicket,
}

/// A running mDNS source. [`shutdown`](Self::shutdown) says goodbye (peers drop this node at
/// once); dropping it stops it without waiting.
pub struct MdnsDiscovery {
    daemon: ServiceDaemon,
    registered: Option<String>,
    task: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MdnsDiscovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MdnsDiscovery")
            .field("registered", &self.registered)
            .field("browsing", &self.task.is_some())
            .finish_non_exhaustive()
    }
}

/// The instance name of `peer`: `bc-` and the first 16 hex digits of its id (a DNS label has
/// at most 63 bytes; the name is a label only, the ticket says who it is).
pub fn instance_name(peer: &PeerId) -> String {
    let hex = peer.to_string();
    format!("bc-{}", &hex[..hex.len().min(16)])
}

impl MdnsDiscovery {
    /// Starts announcing `ticket` (if `config.announce`) and browsing (if `config.browse`),
    /// feeding `discovery`.
    pub fn start(
        discovery: &Discovery,
        ticket: Option<&Ticket>,
        config: MdnsConfig,
    ) -> Result<Self, MdnsError> {
        let daemon = ServiceDaemon::new()?;
        match &config.interfaces {
            Interfaces::All => {}
            Interfaces::Loopback => {
                daemon.disable_interface(IfKind::All)?;
                daemon.enable_interface(vec![IfKind::LoopbackV4, IfKind::LoopbackV6])?;
            }
            Interfaces::Named(names) => {
                daemon.disable_interface(IfKind::All)?;
                let kinds: Vec<IfKind> = names.iter().map(IfKind::from).collect();
                daemon.enable_interface(kinds)?;
            }
        }
        let mut this = Self {
            daemon,
            registered: None,
            task: None,
        };
        if config.announce {
            let ticket = ticket.ok_or(MdnsError::NoTicket)?;
            this.registered = Some(this.register(ticket, &config.service_type)?);
        }
        if config.browse {
            let events = this.daemon.browse(&config.service_type)?;
            let sender = discovery.sender();
            let max = config.max_services.max(1);
            this.task = Some(tokio::spawn(browse(events, sender, max)));
        }
        Ok(this)
    }

    fn register(&self, ticket: &Ticket, service_type: &str) -> Result<String, MdnsError> {
        // The ticket must fit the record: drop routes from the end until it does.
        let mut routes = ticket.routes().to_vec();
        let properties = loop {
            let t = Ticket::new(ticket.peer(), routes.clone()).map_err(TxtError::from)?;
            match txt::encode(&t) {
                Ok(p) => break p,
                Err(TxtError::TooLong(_)) if routes.len() > 1 => {
                    routes.pop();
                }
                Err(e) => return Err(e.into()),
            }
        };
        let name = instance_name(&ticket.peer());
        let host = format!("{name}.local.");
        let port = routes
            .iter()
            .find_map(TransportAddress::socket_addr)
            .map_or(0, |a| a.port());
        let properties: Vec<(&str, &str)> = properties
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let info = ServiceInfo::new(service_type, &name, &host, "", port, &properties[..])?
            .enable_addr_auto();
        let fullname = info.get_fullname().to_string();
        self.daemon.register(info)?;
        tracing::debug!(%fullname, "announced over mDNS");
        Ok(fullname)
    }

    /// Says goodbye (unregisters, so peers drop this node now) and stops.
    pub async fn shutdown(mut self) {
        if let Some(fullname) = self.registered.take() {
            if let Ok(done) = self.daemon.unregister(&fullname) {
                let _ = tokio::time::timeout(GOODBYE_WAIT, done.recv_async()).await;
            }
        }
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let _ = self.daemon.shutdown();
    }
}

impl Drop for MdnsDiscovery {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Turns browse events into discovery inputs until the daemon stops.
async fn browse(
    events: mdns_sd::Receiver<ServiceEvent>,
    sender: DiscoverySender,
    max_services: usize,
) {
    let mut known: HashMap<String, (PeerId, Vec<TransportAddress>)> = HashMap::new();
    let mut refresh = tokio::time::interval(REFRESH);
    refresh.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv_async() => match event {
                Ok(ServiceEvent::ServiceResolved(info)) => match announcement(&info) {
                    Ok((peer, routes)) => {
                        if known.len() < max_services || known.contains_key(&info.fullname) {
                            known.insert(info.fullname.clone(), (peer, routes.clone()));
                        }
                        sender.offer(DiscoveryInput::Announce {
                            peer,
                            routes,
                            source: DiscoverySource::Mdns,
                            ttl: None,
                        });
                    }
                    Err(e) => tracing::debug!(instance = %info.fullname, error = %e, "mDNS announcement refused"),
                },
                Ok(ServiceEvent::ServiceRemoved(_, fullname)) => {
                    if let Some((peer, _)) = known.remove(&fullname) {
                        sender.offer(DiscoveryInput::Withdraw { peer, source: DiscoverySource::Mdns });
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            },
            _ = refresh.tick() => {
                for (peer, routes) in known.values() {
                    sender.offer(DiscoveryInput::Announce {
                        peer: *peer,
                        routes: routes.clone(),
                        source: DiscoverySource::Mdns,
                        ttl: None,
                    });
                }
            }
        }
    }
}

/// The peer and routes a resolved instance announces.
fn announcement(info: &ResolvedService) -> Result<(PeerId, Vec<TransportAddress>), TxtError> {
    let ticket = txt::decode(|key| info.txt_properties.get_property_val_str(key))?;
    let mut ips: Vec<IpAddr> = info.addresses.iter().map(|a| a.to_ip_addr()).collect();
    ips.sort();
    Ok((ticket.peer(), concrete_routes(ticket.routes(), &ips)))
}

/// `routes` with every route on an unspecified address (`0.0.0.0`, `::`) replaced by one per
/// resolved address of its family, at most [`MAX_TICKET_ROUTES`] in all.
pub fn concrete_routes(routes: &[TransportAddress], resolved: &[IpAddr]) -> Vec<TransportAddress> {
    let mut out = Vec::new();
    for route in routes {
        match route.socket_addr() {
            Some(sa) if sa.ip().is_unspecified() => {
                for ip in resolved.iter().filter(|ip| ip.is_ipv4() == sa.is_ipv4()) {
                    if let Some(r) = with_addr(route, SocketAddr::new(*ip, sa.port())) {
                        out.push(r);
                    }
                }
            }
            _ => out.push(route.clone()),
        }
    }
    out.dedup();
    out.truncate(MAX_TICKET_ROUTES);
    out
}

fn with_addr(route: &TransportAddress, addr: SocketAddr) -> Option<TransportAddress> {
    match route {
        TransportAddress::Tcp(_) => Some(TransportAddress::Tcp(addr)),
        TransportAddress::Udp(_) => Some(TransportAddress::Udp(addr)),
        TransportAddress::Quic(_) => Some(TransportAddress::Quic(addr)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use bitcraps_transport_core::Keypair;

    use super::*;

    #[test]
    fn unspecified_routes_take_the_resolved_addresses() {
        let routes: Vec<TransportAddress> = [
            "tcp://0.0.0.0:7000",
            "quic://127.0.0.1:7001",
            "udp://[::]:7002",
            "ws://0.0.0.0:7003/x",
        ]
        .iter()
        .map(|r| r.parse().expect("route"))
        .collect();
        let ips: Vec<IpAddr> = ["10.0.0.7", "192.168.1.2", "fe80::1"]
            .iter()
            .map(|i| i.parse().expect("ip"))
            .collect();
        let got: Vec<String> = concrete_routes(&routes, &ips)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            got,
            [
                "tcp://10.0.0.7:7000",
                "tcp://192.168.1.2:7000",
                "quic://127.0.0.1:7001",
                "udp://[fe80::1]:7002",
            ]
        );
    }

    #[test]
    fn instance_names_are_dns_labels() {
        let peer = Keypair::from_secret_bytes([7; 32]).peer_id();
        let name = instance_name(&peer);
        assert_eq!(name.len(), 19);
        assert!(name.starts_with("bc-"));
    }
}
