//! What the actor reports for its machine: the machine's notices as events (with the peer
//! span's `route` and the route/breaker counters), and the active connection's RTT for the
//! stats.

use super::io::Io;
use crate::event::CoordinatorEvent;
use crate::machine::Notice;
use crate::policy::BreakerState;

impl Io {
    /// Reads the active connection's RTT estimator: a new sample goes into its transport's
    /// histogram, the smoothed RTT into the peer's gauge. Each wake-up handles one input, so
    /// no sample of the active connection is missed.
    pub(super) fn observe_rtt(&mut self) {
        use std::sync::atomic::Ordering::Relaxed;
        let Some((link, rtt)) = self.machine.active_rtt() else {
            return;
        };
        let samples = rtt.samples();
        if self.rtt_seen == Some((link, samples)) {
            return;
        }
        self.rtt_seen = Some((link, samples));
        if let (Some(latest), Some(l)) = (rtt.latest(), self.links.get(&link)) {
            self.shared.transport_counters[l.transport].rtt_sample(latest);
        }
        let srtt = rtt.srtt().map_or(0, |d| d.as_micros().max(1));
        let srtt = u64::try_from(srtt).unwrap_or(u64::MAX);
        self.handle.counters.srtt_micros.store(srtt, Relaxed);
    }

    pub(super) fn notify(&mut self, notice: Notice) {
        use std::sync::atomic::Ordering::Relaxed;
        let peer = self.handle.peer;
        let event = match notice {
            Notice::Connected { address } => {
                self.connected = true;
                tracing::Span::current().record("route", tracing::field::display(&address));
                tracing::info!(%address, "connected");
                CoordinatorEvent::Connected { peer, address }
            }
            Notice::RouteChanged { from, to } => {
                tracing::Span::current().record("route", tracing::field::display(&to));
                tracing::info!(?from, %to, "route changed");
                self.handle.counters.route_changes.fetch_add(1, Relaxed);
                CoordinatorEvent::RouteChanged { peer, from, to }
            }
            Notice::Breaker { route, state } => {
                if matches!(state, BreakerState::Open { .. }) {
                    self.handle.counters.breaker_trips.fetch_add(1, Relaxed);
                }
                let open = self
                    .machine
                    .breakers()
                    .iter()
                    .filter(|(_, _, s)| !matches!(s, BreakerState::Closed))
                    .count();
                self.handle
                    .counters
                    .breakers_open
                    .store(open as u64, Relaxed);
                tracing::debug!(%route, ?state, "breaker");
                CoordinatorEvent::Breaker { peer, route, state }
            }
            Notice::DialFailed { route, error } => {
                tracing::debug!(%route, %error, "dial failed");
                CoordinatorEvent::DialFailed { peer, route, error }
            }
            Notice::LinkFailed { address, failure } => {
                tracing::debug!(%address, %failure, "connection given up");
                CoordinatorEvent::LinkFailed {
                    peer,
                    address,
                    failure,
                }
            }
        };
        self.shared.events.emit(event);
    }
}
