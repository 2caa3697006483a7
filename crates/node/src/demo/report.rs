//! [`Report`]: where the demo's events go. Plain lines (or JSON with `--json`) through
//! [`Output`], or, when stdout is a terminal, into the live view's state instead; the seats and
//! receipts only the live view shows are no-ops for lines.

use std::sync::{Arc, Mutex};

use crate::output::{Event, Output};

use super::live::LiveState;

/// The demo's reporter (cheap to clone into the players' tasks).
#[derive(Debug, Clone)]
pub(super) struct Report {
    out: Output,
    live: Option<Arc<Mutex<LiveState>>>,
}

impl Report {
    /// Events as lines (or JSON) on `out`.
    pub(super) fn lines(out: Output) -> Self {
        Self { out, live: None }
    }

    /// Events into the live view's `state`.
    pub(super) fn live(out: Output, state: Arc<Mutex<LiveState>>) -> Self {
        Self {
            out,
            live: Some(state),
        }
    }

    fn update(&self, f: impl FnOnce(&mut LiveState)) {
        if let Some(state) = &self.live {
            f(&mut state.lock().unwrap_or_else(|p| p.into_inner()));
        }
    }

    /// Reports one event.
    pub(super) fn emit(&self, event: Event) {
        match &self.live {
            Some(_) => self.update(|s| s.apply(&event)),
            None => self.out.emit(&event),
        }
    }

    /// A free-form heading for readable lines (not shown by the live view, nor in JSON).
    pub(super) fn note(&self, text: &str) {
        if self.live.is_none() {
            self.out.note(text);
        }
    }

    /// A player sat down, connected over `route` (the live view's row).
    pub(super) fn seat(&self, name: &str, transport: &str, peer_id: String, route: String) {
        self.update(|s| s.seat(name, transport, peer_id, route));
    }

    /// A bet's receipt came back: delivered after `rtt`, or not (the live view's counts).
    pub(super) fn receipt(&self, name: &str, rtt: Option<std::time::Duration>) {
        self.update(|s| s.receipt(name, rtt));
    }
}
