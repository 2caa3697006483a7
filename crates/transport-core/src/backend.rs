//! The plumbing a backend needs to build connections, and an application does not.
//!
//! An application uses the crate root: [`Transport`](crate::Transport),
//! [`Connection`](crate::Connection), [`PeerId`](crate::PeerId), addresses, errors, limits. A
//! backend (TCP, UDP, QUIC, WebSocket, BLE, memory, the mesh, or a third party's) also needs:
//!
//! - [`new_connection`]: a [`Connection`](crate::Connection) and its driver's end,
//!   [`ConnectionIo`]: the queue of [`SendItem`] items to write, the [`IncomingSender`] that
//!   delivers received messages (with backpressure), and the [`ConnectionState`] that records the
//!   link's state and statistics;
//! - [`finish_inbound`] and [`ListenerCounters`]: the bookkeeping of an accept loop;
//! - [`ensure_supported`]: the "unsupported address" answer every `dial` and `listen` starts with.
//!
//! Stream backends use [`stream`](crate::stream) (the secure channel over any byte stream) and
//! need none of the rest; the other modules a backend may use are
//! [`framing`](crate::framing), [`refusal`](crate::refusal) and [`secure`](crate::secure).

pub use crate::connection::{
    new_connection, ConnectionIo, ConnectionState, IncomingSender, SendItem,
};
pub use crate::inbound::{finish_inbound, ListenerCounters};
pub use crate::transport::ensure_supported;
