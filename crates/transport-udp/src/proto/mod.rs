//! The sans-IO protocol core: plain structs, time passed in as `now`, no tokio, no sockets.
//! The async shell ([`UdpTransport`](crate::UdpTransport)) only moves bytes and sleeps.
//!
//! - [`wire`]: the datagram formats below, parsed and encoded.
//! - [`dial::DialHandshake`]: the initiator's handshake with retransmission and deadline.
//! - [`accept::Acceptor`]: the responder's side of a socket: handshakes, the capped
//!   [`table::AssociationTable`], routing to sessions, anti-amplification.
//! - [`session::Session`]: an established association: sealing, opening, the replay window,
//!   keep-alives, idle expiry and the close exchange.
//!
//! # Datagram formats
//!
//! Every datagram starts with a 5-byte header: a type byte and a 32-bit big-endian session id.
//! Each side picks a random non-zero session id per association; the header carries the
//! **receiver's** id, except in HANDSHAKE_1, where the responder has none yet and it carries the
//! initiator's. One socket thus serves many peers (associations are keyed by remote address and
//! our id), and a later version could follow a peer across an address change by id alone.
//!
//! ```text
//! HANDSHAKE_1  initiator -> responder, 202 bytes
//!   0x01 | initiator id (4) | Noise msg1 (33: suite id (1) || e (32)) | 164 zero bytes
//! HANDSHAKE_2  responder -> initiator, 202 bytes
//!   0x02 | initiator id (4) | responder id (4) | Noise msg2 (193: e, ee, s, es + identity payload)
//! HANDSHAKE_3  initiator -> responder, 166 bytes
//!   0x03 | responder id (4) | Noise msg3 (161: s, se + identity payload)
//! CONFIRM      responder -> initiator, 30 bytes (ACCEPT) or 35 + text (REJECT)
//!   0x04 | initiator id (4) | counter (u64 BE) | AEAD(kind || body) (1 + body + 16)
//! DATA         either way, 30 + body bytes
//!   0x05 | receiver id (4)  | counter (u64 BE) | AEAD(kind || body) (1 + body + 16)
//! ```
//!
//! HANDSHAKE_1 is padded to the length of HANDSHAKE_2 and any other length (or non-zero
//! padding) is refused, so a responder never sends more bytes to an unvalidated address than it
//! received. The Noise messages and the identity payloads are the core's
//! (`secure::handshake`): the initiator checks the responder's PeerId from msg2 before
//! revealing its own in msg3.
//!
//! Sealed records use the Noise transport keys with an explicit nonce: the counter in the
//! datagram is the nonce (each direction counts from 0; the responder's CONFIRM is its nonce 0).
//! The plaintext is a kind byte and a body, as in the core's record layer:
//!
//! | kind | in | body |
//! |---|---|---|
//! | `0x00` DATA | DATA | one whole application message (at most `max_payload` bytes) |
//! | `0x02` CLOSE | DATA | UTF-8 reason, at most 256 bytes (empty in the answer to a CLOSE) |
//! | `0x03` ACCEPT | CONFIRM | empty |
//! | `0x04` REJECT | CONFIRM | limit id (1), retry-after ms (u32 BE, `0xFFFFFFFF` unknown), text |
//! | `0x10` KEEPALIVE | DATA | empty |
//!
//! A receiver checks the counter against an RFC 6479 window (1,984 counters) before
//! decrypting, and marks it only after the record authenticated. Replayed, too old, tampered or
//! unknown-session datagrams are dropped and counted; they never end a session.
//!
//! # Handshake round trips
//!
//! Two round trips before `dial` returns (H1 -> H2, then H3 -> CONFIRM: the dialer must learn
//! whether the responder's limits admitted it); the responder's connection starts after 1.5,
//! when H3 arrives. Lost handshake datagrams are recovered by the initiator's retransmission
//! timer (200 ms, doubling, at most 2 s apart, 8 transmissions per message, all within the
//! handshake timeout); the responder never retransmits on its own, it answers each
//! retransmitted H1 or H3 with its stored H2 or CONFIRM, byte for byte and at no DH cost.
//! If every CONFIRM is lost the dial times out while the responder's connection idles out.

pub mod accept;
pub mod dial;
pub mod gate;
pub mod session;
pub mod table;
pub mod wire;

#[cfg(test)]
mod accept_tests;
#[cfg(test)]
mod session_tests;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod vector_tests;
