//! LAN discovery for `listen --discover`: the node announces its ticket (peer id and bound
//! routes) over mDNS/DNS-SD, browses for other bitcraps nodes, and auto-connects to what it
//! finds within the discovery service's limits (table cap, admission and dial-rate buckets,
//! see `bitcraps_discovery::DiscoveryConfig`). Each dial expects the announced peer id, so the
//! handshake proves who answers; an announcement alone is never trusted. What is found and lost
//! is printed by the event pump (`peer_discovered`, `peer_lost`).

use anyhow::{bail, Context, Result};
use bitcraps_coordinator::TransportCoordinator;
use bitcraps_discovery::{
    Discovery, DiscoveryConfig, Interfaces, MdnsConfig, MdnsDiscovery, SERVICE_TYPE,
};
use bitcraps_transport_core::Ticket;
use clap::Args;

/// The discovery options of `listen`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DiscoverArgs {
    /// Announce this node on the LAN over mDNS (its ticket: peer id and bound routes), and
    /// connect to the bitcraps nodes discovered there (each dial checks the announced peer
    /// id). Prints `peer_discovered` and `peer_lost`.
    #[arg(long)]
    pub(crate) discover: bool,
    /// The DNS-SD service type announced and browsed; another type keeps a group of nodes
    /// apart from the rest of the LAN.
    #[arg(long, value_name = "TYPE", default_value = SERVICE_TYPE, requires = "discover")]
    pub(crate) discover_service: String,
    /// The interfaces mDNS uses: `all`, `loopback` (nothing leaves the machine: several nodes
    /// on one host), or interface names (repeatable, e.g. wlan0).
    #[arg(long, value_name = "IF", default_value = "all", requires = "discover")]
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

    /// Starts discovery for `coordinator` announcing `ticket`, if `--discover` was given.
    pub(crate) fn start(
        &self,
        coordinator: &TransportCoordinator,
        ticket: &Ticket,
    ) -> Result<Option<Running>> {
        if !self.discover {
            return Ok(None);
        }
        let mut config = MdnsConfig::default();
        config.service_type = self.discover_service.clone();
        config.interfaces = self.interfaces()?;
        let discovery = Discovery::start(coordinator.clone(), DiscoveryConfig::auto_connect());
        let mdns = MdnsDiscovery::start(&discovery, Some(ticket), config)
            .with_context(|| format!("mDNS discovery of {}", self.discover_service))?;
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
            discover_service: SERVICE_TYPE.into(),
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
    }
}
