//! The mesh packet's wire format: a byte-exact encoder and a decoder that never panics.
//!
//! ```text
//! offset  size  field
//! 0       1     version (1)
//! 1       1     kind: 0x01 broadcast, 0x02 directed, 0x03 neighbour list (one hop only)
//! 2       1     ttl: hops it may still travel (not signed)
//! 3       1     hops: hops travelled so far (not signed)
//! 4       1     flags (not signed): bit 0 STORED = left a store-and-forward buffer,
//!                     bit 1 PARTIAL = not sent to all the sender's neighbours; others 0
//! 5       32    origin: the origin's Ed25519 public key (its PeerId)
//! 37      16    message id, chosen at random by the origin
//! 53      32    destination PeerId (directed packets only)
//! ..      2     payload length n, big-endian, at most MAX_PAYLOAD
//! ..      n     payload (directed: ephemeral X25519 key, ciphertext, tag)
//! ..      64    Ed25519 signature by the origin over the signed bytes (see `signed_bytes`)
//! ```
//!
//! The decoder borrows nothing and copies nothing: it slices the input [`Bytes`]. It reads a
//! length only to compare it with what the input actually holds, so no allocation ever follows
//! from an unchecked length.

use bytes::{BufMut, Bytes, BytesMut};

use bitcraps_transport_core::PeerId;

/// The only version this crate speaks.
pub const VERSION: u8 = 1;
/// Largest payload a packet carries (directed payloads include the encryption overhead).
pub const MAX_PAYLOAD: usize = 1024;
/// Bytes before the destination: version, kind, ttl, hops, flags, origin, id.
pub const FIXED_HEADER_LEN: usize = 53;
/// Bytes of the signature at the end.
pub const SIGNATURE_LEN: usize = 64;
/// Largest encoded packet.
pub const MAX_PACKET: usize = FIXED_HEADER_LEN + 32 + 2 + MAX_PAYLOAD + SIGNATURE_LEN;
/// The domain separation prefix of the signed bytes.
pub const SIGNING_DOMAIN: &[u8] = b"bitcraps-mesh-packet-v1\0";
/// Offset of the TTL byte (patched by relays).
pub const TTL_OFFSET: usize = 2;
/// Offset of the hop count byte (patched by relays).
pub const HOPS_OFFSET: usize = 3;
/// Offset of the flags byte (set by relays).
pub const FLAGS_OFFSET: usize = 4;
/// Flag: the packet was held in a store-and-forward buffer; no node stores it again.
pub const FLAG_STORED: u8 = 0x01;
/// Flag: the sender did not send this copy to all of its neighbours (a unicast on a route, a
/// store's offer, a suppressed or fan-out-limited relay), so receivers must not assume the
/// sender's neighbours have it.
pub const FLAG_PARTIAL: u8 = 0x02;
/// The flag bits this version defines.
pub const KNOWN_FLAGS: u8 = FLAG_STORED | FLAG_PARTIAL;

/// A message's id: 16 random bytes chosen by its origin. With the origin, it names a packet.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct MessageId(pub [u8; 16]);

/// Where a packet goes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Destination {
    /// Every node of the mesh.
    Broadcast,
    /// One peer; the payload is encrypted to its key.
    Peer(PeerId),
    /// The sender's neighbours, one hop only: the payload lists the sender's neighbours'
    /// PeerIds. Sent by the engine itself; [`Mesh::send`](crate::Mesh::send) refuses it.
    Neighbours,
}

/// Most PeerIds a neighbour list carries.
pub const MAX_NEIGHBOURS: usize = 32;

/// Encodes a neighbour list payload (at most [`MAX_NEIGHBOURS`] ids; more are cut).
pub fn neighbours_payload(peers: &[PeerId]) -> Bytes {
    let mut out = BytesMut::with_capacity(32 * peers.len().min(MAX_NEIGHBOURS));
    for p in peers.iter().take(MAX_NEIGHBOURS) {
        out.put_slice(p.as_bytes());
    }
    out.freeze()
}

/// Decodes a neighbour list payload: whole 32-byte valid keys, at most [`MAX_NEIGHBOURS`].
pub fn parse_neighbours(payload: &[u8]) -> Result<Vec<PeerId>, DecodeError> {
    if !payload.len().is_multiple_of(32) || payload.len() / 32 > MAX_NEIGHBOURS {
        return Err(DecodeError::NeighbourList(payload.len()));
    }
    payload
        .chunks_exact(32)
        .map(|c| {
            let mut b = [0u8; 32];
            b.copy_from_slice(c);
            PeerId::from_bytes(b).map_err(|_| DecodeError::InvalidKey { field: "neighbour" })
        })
        .collect()
}

/// Why bytes are not a mesh packet.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ends before the field named.
    #[error("packet truncated in {field}")]
    Truncated {
        /// The field that did not fit.
        field: &'static str,
    },
    /// The version byte is not [`VERSION`].
    #[error("unsupported mesh packet version {0}")]
    Version(u8),
    /// The kind byte is unknown.
    #[error("unknown mesh packet kind {0:#04x}")]
    Kind(u8),
    /// The payload length exceeds [`MAX_PAYLOAD`].
    #[error("payload length {0} exceeds the maximum {MAX_PAYLOAD}")]
    PayloadTooLong(usize),
    /// A flag bit this version does not define is set.
    #[error("unknown flags {0:#04x}")]
    Flags(u8),
    /// A neighbour list payload is not whole keys, or lists too many.
    #[error("neighbour list of {0} bytes is not 0 to 32 whole keys")]
    NeighbourList(usize),
    /// Bytes follow the signature.
    #[error("{0} bytes after the signature")]
    Trailing(usize),
    /// The origin or destination is not a valid Ed25519 key.
    #[error("invalid {field} key")]
    InvalidKey {
        /// Which key.
        field: &'static str,
    },
}

/// A decoded packet. Its fields are the wire's; nothing here says the signature is valid.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Packet {
    /// Hops it may still travel.
    pub ttl: u8,
    /// Hops travelled so far.
    pub hops: u8,
    /// Relay-set flags ([`FLAG_STORED`], [`FLAG_PARTIAL`]).
    pub flags: u8,
    /// The origin (signer).
    pub origin: PeerId,
    /// The message id.
    pub id: MessageId,
    /// Broadcast or one peer.
    pub destination: Destination,
    /// The payload (ciphertext for directed packets).
    pub payload: Bytes,
    /// The origin's signature over [`Packet::signed_bytes`].
    pub signature: [u8; 64],
}

const KIND_BROADCAST: u8 = 0x01;
const KIND_DIRECTED: u8 = 0x02;
const KIND_NEIGHBOURS: u8 = 0x03;

/// A cursor over the input that fails instead of panicking.
struct Reader<'a> {
    bytes: &'a Bytes,
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        let end = self
            .at
            .checked_add(n)
            .ok_or(DecodeError::Truncated { field })?;
        if end > self.bytes.len() {
            return Err(DecodeError::Truncated { field });
        }
        let out = self.bytes.slice(self.at..end);
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let bytes = self.take(N, field)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        Ok(out)
    }
}

impl Packet {
    /// Decodes one packet occupying all of `bytes`.
    pub fn decode(bytes: &Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader { bytes, at: 0 };
        let [version, kind, ttl, hops, flags] = r.array::<5>("header")?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        if flags & !KNOWN_FLAGS != 0 {
            return Err(DecodeError::Flags(flags));
        }
        let origin = PeerId::from_bytes(r.array::<32>("origin")?)
            .map_err(|_| DecodeError::InvalidKey { field: "origin" })?;
        let id = MessageId(r.array::<16>("message id")?);
        let destination = match kind {
            KIND_BROADCAST => Destination::Broadcast,
            KIND_DIRECTED => {
                Destination::Peer(PeerId::from_bytes(r.array::<32>("destination")?).map_err(
                    |_| DecodeError::InvalidKey {
                        field: "destination",
                    },
                )?)
            }
            KIND_NEIGHBOURS => Destination::Neighbours,
            other => return Err(DecodeError::Kind(other)),
        };
        let len = usize::from(u16::from_be_bytes(r.array::<2>("payload length")?));
        if len > MAX_PAYLOAD {
            return Err(DecodeError::PayloadTooLong(len));
        }
        let payload = r.take(len, "payload")?;
        let signature = r.array::<64>("signature")?;
        let rest = bytes.len() - r.at;
        if rest != 0 {
            return Err(DecodeError::Trailing(rest));
        }
        Ok(Self {
            ttl,
            hops,
            flags,
            origin,
            id,
            destination,
            payload,
            signature,
        })
    }

    /// The encoded length of this packet.
    pub fn encoded_len(&self) -> usize {
        let dest = match self.destination {
            Destination::Broadcast | Destination::Neighbours => 0,
            Destination::Peer(_) => 32,
        };
        FIXED_HEADER_LEN + dest + 2 + self.payload.len() + SIGNATURE_LEN
    }

    /// Encodes the packet. The payload must be at most [`MAX_PAYLOAD`] bytes (the constructors
    /// in [`crate::crypto`] check it).
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        out.put_u8(VERSION);
        out.put_u8(self.kind());
        out.put_u8(self.ttl);
        out.put_u8(self.hops);
        out.put_u8(self.flags);
        self.put_signed_body(&mut out);
        out.put_slice(&self.signature);
        out.freeze()
    }

    /// The bytes the origin signs: [`SIGNING_DOMAIN`], the version and kind, then every field
    /// after the hop count up to the signature (origin, id, destination, length, payload).
    /// TTL, hop count and flags are left out: relays change them.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = BytesMut::with_capacity(SIGNING_DOMAIN.len() + self.encoded_len());
        out.put_slice(SIGNING_DOMAIN);
        out.put_u8(VERSION);
        out.put_u8(self.kind());
        self.put_signed_body(&mut out);
        out.to_vec()
    }

    fn kind(&self) -> u8 {
        match self.destination {
            Destination::Broadcast => KIND_BROADCAST,
            Destination::Peer(_) => KIND_DIRECTED,
            Destination::Neighbours => KIND_NEIGHBOURS,
        }
    }

    fn put_signed_body(&self, out: &mut BytesMut) {
        out.put_slice(self.origin.as_bytes());
        out.put_slice(&self.id.0);
        if let Destination::Peer(dest) = self.destination {
            out.put_slice(dest.as_bytes());
        }
        // The payload never exceeds MAX_PAYLOAD (< 65 536), so the length fits.
        out.put_u16(u16::try_from(self.payload.len()).unwrap_or(u16::MAX));
        out.put_slice(&self.payload);
    }
}

/// The flags byte of an encoded packet (0 if too short).
pub fn flags_of(encoded: &[u8]) -> u8 {
    encoded.get(FLAGS_OFFSET).copied().unwrap_or(0)
}

/// A copy of an encoded packet with `flag` set.
pub fn with_flag(encoded: &Bytes, flag: u8) -> Bytes {
    if flags_of(encoded) & flag == flag || encoded.len() <= FLAGS_OFFSET {
        return encoded.clone();
    }
    let mut out = BytesMut::from(&encoded[..]);
    out[FLAGS_OFFSET] |= flag;
    out.freeze()
}

/// A copy of an encoded packet with its TTL, hop count and flags replaced (what a relay sends).
pub fn with_relay_fields(encoded: &Bytes, ttl: u8, hops: u8, flags: u8) -> Bytes {
    let mut out = BytesMut::from(&encoded[..]);
    if out.len() > FLAGS_OFFSET {
        out[TTL_OFFSET] = ttl;
        out[HOPS_OFFSET] = hops;
        out[FLAGS_OFFSET] = flags;
    }
    out.freeze()
}
