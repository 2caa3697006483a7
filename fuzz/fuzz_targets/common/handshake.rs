//! What the handshake fuzz targets share: two fixed identities and the XOR mask that turns the
//! input into changes of a genuine message.

use std::sync::{Arc, OnceLock};

use bitcraps_transport_core::secure::LocalIdentity;
use bitcraps_transport_core::Keypair;

/// The dialing side's identity (fixed keys).
pub fn initiator() -> &'static LocalIdentity {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| LocalIdentity::with_noise_key(Keypair::from_secret_bytes([7; 32]), [9; 32]))
}

/// The listening side's identity (fixed keys).
pub fn responder() -> &'static LocalIdentity {
    static ID: OnceLock<Arc<LocalIdentity>> = OnceLock::new();
    ID.get_or_init(|| LocalIdentity::with_noise_key(Keypair::from_secret_bytes([8; 32]), [10; 32]))
}

/// `message` XOR-ed with `mask` (repeated over its length when shorter, ignored when empty).
pub fn masked(message: &[u8], mask: &[u8]) -> Vec<u8> {
    if mask.is_empty() {
        return message.to_vec();
    }
    message
        .iter()
        .zip(mask.iter().cycle())
        .map(|(m, k)| m ^ k)
        .collect()
}
