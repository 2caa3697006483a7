//! Identities: [`PeerId`] (an Ed25519 public key) and [`Keypair`] (its secret half).
//!
//! A `PeerId` prints as 64 lowercase hex digits and parses back from the same form. A
//! [`Keypair`] can be generated, saved to a file readable only by its owner (mode 0600 on Unix)
//! and loaded again.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Errors about keys and peer ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The text is not 64 hex digits.
    #[error("invalid peer id `{text}`: expected 64 hex digits")]
    InvalidPeerIdText {
        /// The text that failed to parse (cut to 80 characters).
        text: String,
    },
    /// The bytes are not a valid Ed25519 public key.
    #[error("invalid peer id: not a valid Ed25519 public key")]
    InvalidPublicKey,
    /// A key file could not be read or written.
    #[error("key file {path}: {message}")]
    File {
        /// The file's path.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A key file does not hold a key in our format.
    #[error("key file {path} is malformed: {message}")]
    MalformedFile {
        /// The file's path.
        path: String,
        /// What is wrong with it.
        message: String,
    },
}

/// A peer's identity: its Ed25519 public key (32 bytes).
///
/// Every connection proves the remote's `PeerId` during its handshake. The text form is the key
/// in lowercase hex; [`PeerId::short`] gives the first 8 digits for logs.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; 32]);

impl PeerId {
    /// Builds a `PeerId` from a public key's bytes, checking that they are a valid Ed25519 key
    /// by the rules of protocol.md section 1: the canonical encoding (y below 2^255 - 19) of a
    /// point of the curve that is not of small order.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyError> {
        if !is_canonical_y(&bytes) {
            return Err(KeyError::InvalidPublicKey);
        }
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::InvalidPublicKey);
        }
        Ok(Self(bytes))
    }

    /// The public key's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hex digits, for logs.
    pub fn short(&self) -> String {
        hex::encode(&self.0[..4])
    }

    /// Verifies an Ed25519 `signature` by this peer over `message`.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.0) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &sig).is_ok()
    }
}

/// True if the y coordinate of an encoded Edwards point (the 255 low bits, little-endian) is
/// below the field prime 2^255 - 19. The top bit is x's sign and is not part of y.
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    // p = 2^255 - 19: little-endian ed ff .. ff 7f. y >= p only if bytes 1..31 are all ff,
    // byte 31 (sign bit cleared) is 7f and byte 0 is ed or more.
    let high = bytes[31] & 0x7f;
    !(high == 0x7f && bytes[1..31].iter().all(|&b| b == 0xff) && bytes[0] >= 0xed)
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerId({})", self.short())
    }
}

impl FromStr for PeerId {
    type Err = KeyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = || KeyError::InvalidPeerIdText {
            text: s.chars().take(80).collect(),
        };
        if s.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(s, &mut bytes).map_err(|_| invalid())?;
        Self::from_bytes(bytes)
    }
}

impl Serialize for PeerId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PeerId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A node's Ed25519 identity: the secret key and its [`PeerId`].
#[derive(Clone)]
pub struct Keypair {
    secret: SigningKey,
}

const KEY_FILE_HEADER: &str = "bitcraps-ed25519-secret-v1";

impl Keypair {
    /// Generates a fresh keypair from the operating system's random source.
    pub fn generate() -> Self {
        Self {
            secret: SigningKey::generate(&mut rand::rngs::OsRng),
        }
    }

    /// Builds a keypair from a 32-byte secret seed (deterministic; for tests and key storage).
    pub fn from_secret_bytes(secret: [u8; 32]) -> Self {
        Self {
            secret: SigningKey::from_bytes(&secret),
        }
    }

    /// The 32-byte secret seed. Handle with care.
    pub fn secret_bytes(&self) -> [u8; 32] {
        self.secret.to_bytes()
    }

    /// This keypair's public identity.
    pub fn peer_id(&self) -> PeerId {
        PeerId(self.secret.verifying_key().to_bytes())
    }

    /// Signs `message` with the secret key.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.secret.sign(message).to_bytes()
    }

    /// Saves the secret key to `path` as text, creating the file with mode 0600 (owner only) on
    /// Unix. An existing file is replaced.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), KeyError> {
        use std::io::Write;
        let path = path.as_ref();
        let err = |e: std::io::Error| KeyError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))
                .map_err(err)?;
        }
        let text = format!(
            "{KEY_FILE_HEADER}\n{}\n",
            hex::encode(self.secret.to_bytes())
        );
        file.write_all(text.as_bytes()).map_err(err)?;
        file.sync_all().map_err(err)
    }

    /// Loads a keypair saved by [`Keypair::save`]. On Unix, a file that group or others can
    /// read is refused, as ssh does.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::File {
            path: shown.clone(),
            message: e.to_string(),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path)
                .map_err(|e| KeyError::File {
                    path: shown.clone(),
                    message: e.to_string(),
                })?
                .permissions()
                .mode();
            if mode & 0o077 != 0 {
                return Err(KeyError::File {
                    path: shown,
                    message: format!("permissions {:o} are too open; expected 600", mode & 0o777),
                });
            }
        }
        let malformed = |message: &str| KeyError::MalformedFile {
            path: shown.clone(),
            message: message.to_string(),
        };
        let mut lines = text.lines();
        if lines.next() != Some(KEY_FILE_HEADER) {
            return Err(malformed("missing header line"));
        }
        let hex_line = lines.next().ok_or_else(|| malformed("missing key line"))?;
        let mut secret = [0u8; 32];
        hex::decode_to_slice(hex_line.trim(), &mut secret)
            .map_err(|_| malformed("key line is not 64 hex digits"))?;
        Ok(Self::from_secret_bytes(secret))
    }

    /// Loads the keypair at `path`, or generates one and saves it there if the file does not exist.
    pub fn load_or_generate(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        if path.exists() {
            Self::load(path)
        } else {
            let key = Self::generate();
            key.save(path)?;
            Ok(key)
        }
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("peer_id", &self.peer_id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_id_text_round_trips() {
        let id = Keypair::generate().peer_id();
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PeerId>().unwrap(), id);
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(serde_json::from_str::<PeerId>(&json).unwrap(), id);
    }

    #[test]
    fn malformed_peer_ids_are_refused() {
        assert!("abc".parse::<PeerId>().is_err());
        assert!("zz".repeat(32).parse::<PeerId>().is_err());
        // 64 hex digits that are not a curve point: about half of all encodings fail to decompress.
        let not_a_point = (0u8..=255)
            .map(|first| {
                let mut bytes = [0u8; 32];
                bytes[0] = first;
                bytes[1] = 7;
                bytes
            })
            .find(|bytes| VerifyingKey::from_bytes(bytes).is_err())
            .expect("some encodings are not curve points");
        assert_eq!(
            hex::encode(not_a_point).parse::<PeerId>(),
            Err(KeyError::InvalidPublicKey)
        );
    }

    #[test]
    fn signatures_verify_only_for_the_signer() {
        let a = Keypair::generate();
        let b = Keypair::generate();
        let sig = a.sign(b"bet 10 on 7");
        assert!(a.peer_id().verify(b"bet 10 on 7", &sig));
        assert!(!a.peer_id().verify(b"bet 99 on 7", &sig));
        assert!(!b.peer_id().verify(b"bet 10 on 7", &sig));
    }

    #[test]
    fn key_file_round_trips_with_owner_only_permissions() {
        let dir = std::env::temp_dir().join(format!("bitcraps-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("node.key");
        let key = Keypair::generate();
        key.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Keypair::load(&path).unwrap();
        assert_eq!(loaded.peer_id(), key.peer_id());
        let again = Keypair::load_or_generate(&path).unwrap();
        assert_eq!(again.peer_id(), key.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(Keypair::load(&path), Err(KeyError::File { .. })));
        }
        std::fs::write(&path, "nonsense").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(
            Keypair::load(&path),
            Err(KeyError::MalformedFile { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
