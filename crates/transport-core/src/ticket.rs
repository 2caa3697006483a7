//! [`Ticket`]: a peer's identity and its routes in one compact, QR-friendly line of text, so a
//! player joins a table by scanning or pasting it.
//!
//! Text form: `BCT` followed by the RFC 4648 base32 alphabet (uppercase `A`-`Z`, `2`-`7`, no
//! padding) of
//!
//! ```text
//! version:u8 = 1 | peer id (32 bytes) | route count:u8 (1..=16)
//!   | for each route: length:u8 (1..=255) | the route's URI (UTF-8, e.g. tcp://10.0.0.7:8765)
//!   | checksum: the first 4 bytes of SHA-256 over everything before it
//! ```
//!
//! Every character is in QR's alphanumeric set, so a QR code of a ticket stays small. A
//! ticket proves nothing by itself: every route is still dialed expecting the ticket's PeerId,
//! so a forged ticket can only point at routes that fail the handshake.

use std::fmt;
use std::str::FromStr;

use crate::{PeerId, TransportAddress};

/// The text prefix of every ticket.
pub const TICKET_PREFIX: &str = "BCT";
/// The ticket version this crate writes and reads.
pub const TICKET_VERSION: u8 = 1;
/// Routes a ticket carries at most.
pub const MAX_TICKET_ROUTES: usize = 16;
/// Characters a ticket has at most (16 routes of 255 bytes).
pub const MAX_TICKET_LEN: usize = 7_000;

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const CHECKSUM: usize = 4;

/// Why a ticket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TicketError {
    /// The text does not start with `BCT`.
    #[error("not a ticket: it must start with {TICKET_PREFIX}")]
    Prefix,
    /// A character outside the base32 alphabet, at this position (after the prefix).
    #[error("ticket character {position} is not base32 (A-Z, 2-7)")]
    Character {
        /// Its position after the prefix.
        position: usize,
    },
    /// The text is longer than any ticket can be.
    #[error("ticket of {0} characters is longer than the maximum of {MAX_TICKET_LEN}")]
    TooLong(usize),
    /// The ticket ends early (truncated when copied?).
    #[error("the ticket is truncated")]
    Truncated,
    /// The checksum does not match: a character was changed or lost.
    #[error("the ticket's checksum does not match (mistyped or damaged)")]
    Checksum,
    /// A version this crate does not read.
    #[error("ticket version {0} is not supported (this build reads version {TICKET_VERSION})")]
    Version(u8),
    /// The route count is 0 or over the maximum.
    #[error("a ticket carries 1 to {MAX_TICKET_ROUTES} routes, not {0}")]
    RouteCount(usize),
    /// A route is not a valid address.
    #[error("route {index} of the ticket is not a valid address")]
    Route {
        /// Which route (from 0).
        index: usize,
    },
    /// The peer id is not a valid Ed25519 key.
    #[error("the ticket's peer id is not a valid key")]
    PeerId,
    /// Bytes remain after the last route.
    #[error("the ticket has trailing bytes")]
    Trailing,
}

/// A peer and its routes (most preferred first). See the module docs for the text form.
///
/// ```
/// # use bitcraps_transport_core::{Keypair, Ticket};
/// let peer = Keypair::from_secret_bytes([7; 32]).peer_id();
/// let ticket = Ticket::new(peer, vec!["tcp://127.0.0.1:8765".parse()?])?;
/// let text = ticket.to_string();
/// assert!(text.starts_with("BCT"));
/// assert_eq!(text.parse::<Ticket>()?, ticket);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    peer: PeerId,
    routes: Vec<TransportAddress>,
}

impl Ticket {
    /// A ticket for `peer` reachable over `routes` (1 to 16, each URI at most 255 bytes).
    pub fn new(peer: PeerId, routes: Vec<TransportAddress>) -> Result<Self, TicketError> {
        if routes.is_empty() || routes.len() > MAX_TICKET_ROUTES {
            return Err(TicketError::RouteCount(routes.len()));
        }
        if let Some(index) = routes.iter().position(|r| r.to_string().len() > 255) {
            return Err(TicketError::Route { index });
        }
        Ok(Self { peer, routes })
    }

    /// The peer every route must prove.
    pub fn peer(&self) -> PeerId {
        self.peer
    }

    /// The routes, most preferred first.
    pub fn routes(&self) -> &[TransportAddress] {
        &self.routes
    }

    /// The binary form (before base32).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![TICKET_VERSION];
        out.extend_from_slice(self.peer.as_bytes());
        out.push(self.routes.len() as u8);
        for r in &self.routes {
            let uri = r.to_string();
            out.push(uri.len() as u8);
            out.extend_from_slice(uri.as_bytes());
        }
        let sum = ring::digest::digest(&ring::digest::SHA256, &out);
        out.extend_from_slice(&sum.as_ref()[..CHECKSUM]);
        out
    }

    /// Decodes the binary form.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TicketError> {
        if bytes.len() < 1 + 32 + 1 + CHECKSUM {
            return Err(TicketError::Truncated);
        }
        let (body, sum) = bytes.split_at(bytes.len() - CHECKSUM);
        let want = ring::digest::digest(&ring::digest::SHA256, body);
        if &want.as_ref()[..CHECKSUM] != sum {
            return Err(TicketError::Checksum);
        }
        if body[0] != TICKET_VERSION {
            return Err(TicketError::Version(body[0]));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&body[1..33]);
        let peer = PeerId::from_bytes(key).map_err(|_| TicketError::PeerId)?;
        let count = usize::from(body[33]);
        if count == 0 || count > MAX_TICKET_ROUTES {
            return Err(TicketError::RouteCount(count));
        }
        let mut rest = &body[34..];
        let mut routes = Vec::with_capacity(count);
        for index in 0..count {
            let (&len, tail) = rest.split_first().ok_or(TicketError::Truncated)?;
            let len = usize::from(len);
            if len == 0 {
                return Err(TicketError::Route { index });
            }
            if tail.len() < len {
                return Err(TicketError::Truncated);
            }
            let uri =
                std::str::from_utf8(&tail[..len]).map_err(|_| TicketError::Route { index })?;
            routes.push(uri.parse().map_err(|_| TicketError::Route { index })?);
            rest = &tail[len..];
        }
        if !rest.is_empty() {
            return Err(TicketError::Trailing);
        }
        Ok(Self { peer, routes })
    }
}

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in bytes {
        acc = ((acc << 8) | u32::from(b)) & 0xFFFF;
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn unbase32(text: &str) -> Result<Vec<u8>, TicketError> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut acc, mut bits) = (0u32, 0u32);
    for (position, c) in text.bytes().enumerate() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a',
            b'2'..=b'7' => c - b'2' + 26,
            _ => return Err(TicketError::Character { position }),
        };
        acc = ((acc << 5) | u32::from(v)) & 0xFFFF;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Ok(out)
}

impl fmt::Display for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TICKET_PREFIX}{}", base32(&self.to_bytes()))
    }
}

impl FromStr for Ticket {
    type Err = TicketError;

    /// Parses the text form (surrounding whitespace ignored; lowercase accepted).
    fn from_str(s: &str) -> Result<Self, TicketError> {
        let s = s.trim();
        if s.len() > MAX_TICKET_LEN {
            return Err(TicketError::TooLong(s.len()));
        }
        let body = s
            .get(..TICKET_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(TICKET_PREFIX))
            .map(|_| &s[TICKET_PREFIX.len()..])
            .ok_or(TicketError::Prefix)?;
        Self::from_bytes(&unbase32(body)?)
    }
}

#[cfg(test)]
#[path = "ticket_tests.rs"]
mod tests;
