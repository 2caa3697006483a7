//! LAN discovery for `listen --discover` and `send --discover`. `listen` announces its ticket
//! (peer id and bound routes) over mDNS/DNS-SD, browses for other bitcraps nodes, and
//! auto-connects to what it finds within the discovery service's limits (table cap, admission and dial-rate buckets,
//! see `bitcraps_discovery::DiscoveryConfig`). Each dial expects the announced peer id, so the
//! handshake proves who answers; an announcement alone is never trusted. What is found and lost
//! is printed by the event pump (`peer_discovered`, `peer_lost`). `send` only browses, and takes
//! the first node heard (or the one `--peer` names).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bitcraps_coordinator::TransportCoordinator;
use bitcraps_discovery::{
    Discovery, DiscoveryConfig, Interfaces, MdnsConfig, MdnsDiscovery, SERVICE_TYPE,
};
use bitcraps_transport_core::{PeerId, Ticket, TransportAddress};
use clap::Args;

/// The discovery options of `listen`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DiscoverArgs {
    /// LAN discovery over mDNS. `listen`: announce this node (its ticket: peer id and bound
    /// routes) and connect to the bitcraps nodes discovered. `send`: send to the first node
    /// heard (or --peer), on its announced routes. Every dial checks the announced peer id.
    #[arg(long)]
    pub(crate) discover: bool,
    /// The DNS-SD service type announced and browsed (default _bitcraps._udp.local.);
    /// another type keeps a group of nodes apart from the rest of the LAN.
    #[arg(long, value_name = "TYPE")]
    pub(crate) discover_service: Option<String>,
    /// The interfaces mDNS uses: `all` (the default), `loopback` (nothing leaves the machine:
    /// several nodes on one host), or interface names (repeatable, e.g. wlan0).
    #[arg(long, value_name = "IF")]
    pub(crate) discover_interface: Vec<String>,
}

/// Discovery running for one node: the service and its mDNS source.
#[derive(Debug)]
pub(crate) struct Running {
    _discovery: Discovery,
    mdns: MdnsDiscovery,
}

impl Running {
    /// Says goodbye on the LAN (peers report this node lost at once) and stops.
    pub(crate) async fn shutdown(self) {
        self.mdns.shutdown().await;
    }
}

impl DiscoverArgs {
    /// Refuses the discovery settings without `--discover` (they would do nothing).
    pub(crate) fn check(&self) -> Result<()> {
        if !self.discover
            && (self.discover_service.is_some() || !self.discover_interface.is_empty())
        {
            bail!("--discover-service and --discover-interface need --discover");
        }
        Ok(())
    }

    /// The service type from `--discover-service`, or the default.
    fn service(&self) -> &str {
        self.discover_service.as_deref().unwrap_or(SERVICE_TYPE)
    }

    /// The interface choice from `--discover-interface`.
    fn interfaces(&self) -> Result<Interfaces> {
        let names = &self.discover_interface;
        let special = |n: &str| n == "all" || n == "loopback";
        match names.as_slice() {
            [] => Ok(Interfaces::All),
            [one] if one == "all" => Ok(Interfaces::All),
            [one] if one == "loopback" => Ok(Interfaces::Loopback),
            many if many.iter().any(|n| special(n)) => {
                bail!("--discover-interface: `all` and `loopback` stand alone, not with names")
            }
            many => Ok(Interfaces::Named(many.to_vec())),
        }
    }

    /// The mDNS settings from the options; `announce` says whether to announce a ticket.
    fn mdns(&self, announce: bool) -> Result<MdnsConfig> {
        let mut config = MdnsConfig::default();
        config.service_type = self.service().to_string();
        config.interfaces = self.interfaces()?;
        config.announce = announce;
        Ok(config)
    }

    /// Browses (announcing nothing) until a node is heard that `wanted` accepts (any node
    /// if `None`), at most `wait`; returns its peer id and announced routes.
    pub(crate) async fn find(
        &self,
        coordinator: &TransportCoordinator,
        wanted: Option<PeerId>,
        wait: Duration,
    ) -> Result<(PeerId, Vec<TransportAddress>)> {
        let discovery = Discovery::start(coordinator.clone(), DiscoveryConfig::default());
        let mdns = MdnsDiscovery::start(&discovery, None, self.mdns(false)?)
            .with_context(|| format!("mDNS discovery of {}", self.service()))?;
        let found = tokio::time::timeout(
            wait,
            discovery.wait_for_peer(|p| wanted.is_none_or(|w| w == p.peer)),
        )
        .await;
        mdns.shutdown().await;
        let found = found.map_err(|_| {
            let who = wanted.map_or("no bitcraps node".to_string(), |p| format!("peer {p}"));
            anyhow::anyhow!("{who} heard over mDNS ({}) within {wait:?}", self.service())
        })?;
        Ok((found.peer, found.routes))
    }

    /// Starts discovery for `coordinator` announcing `ticket`, if `--discover` was given.
    pub(crate) fn start(
        &self,
        coordinator: &TransportCoordinator,
        ticket: &Ticket,
    ) -> Result<Option<Running>> {
        self.check()?;
        if !self.discover {
            return Ok(None);
        }
        let discovery = Discovery::start(coordinator.clone(), DiscoveryConfig::auto_connect());
        let mdns = MdnsDiscovery::start(&discovery, Some(ticket), self.mdns(true)?)
            .with_context(|| format!("mDNS discovery of {}", self.service()))?;
        Ok(Some(Running {
            _discovery: discovery,
            mdns,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(names: &[&str]) -> DiscoverArgs {
        DiscoverArgs {
            discover: true,
            discover_service: None,
            discover_interface: names.iter().map(|n| n.to_string()).collect(),
        }
    }

    #[test]
    fn interface_choices_parse_and_special_names_stand_alone() {
        assert_eq!(args(&["all"]).interfaces().unwrap(), Interfaces::All);
        assert_eq!(
            args(&["loopback"]).interfaces().unwrap(),
            Interfaces::Loopback
        );
        assert_eq!(
            args(&["eth0", "wlan0"]).interfaces().unwrap(),
            Interfaces::Named(vec!["eth0".into(), "wlan0".into()])
        );
        assert!(args(&["loopback", "eth0"]).interfaces().is_err());
        assert!(args(&["all", "all"]).interfaces().is_err());
        assert_eq!(args(&[]).interfaces().unwrap(), Interfaces::All);
        assert_eq!(args(&[]).service(), SERVICE_TYPE);
        let mut off = args(&["loopback"]);
        off.discover = false;
        assert!(off.check().is_err());
        off.discover_interface.clear();
        assert!(off.check().is_ok());
    }
}
