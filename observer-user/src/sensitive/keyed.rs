//! Keyed hashing: a redacted value that can still be followed across calls.
//!
//! Redaction replaces a recognised value with a short HMAC-SHA256 tag of it, under a key that
//! belongs to this installation: the same email address gets the same tag in every call, so an
//! operator can see that two calls carried the same person's data without seeing the data. Low
//! entropy values (SSNs, phone numbers) cannot be brute-forced back from a tag without the key,
//! which lives in the state directory, readable by root only, created on first use.

use std::{
    fs,
    io::{self, Read, Write},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use thiserror::Error;

/// The key file inside the state directory.
pub const KEY_FILE: &str = "redaction.key";

/// Key length: SHA-256's block-sized keys add nothing over 32 bytes of randomness.
const KEY_BYTES: usize = 32;

/// Hex characters of a tag shown: 48 bits tell values apart in any realistic inventory, and
/// say nothing about the value without the key.
pub const TAG_HEX_CHARS: usize = 12;

#[derive(Debug, Error)]
pub enum KeyError {
    #[error("cannot read the redaction key {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create the redaction key {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the redaction key {path} is {found} bytes, not {KEY_BYTES}: remove it to make a new one"
    )]
    Length { path: PathBuf, found: usize },
    #[error("cannot read random bytes for a redaction key: {0}")]
    Random(#[source] io::Error),
}

/// A per-installation HMAC key.
#[derive(Clone)]
pub struct HashKey {
    key: [u8; KEY_BYTES],
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

impl HashKey {
    /// The key in `dir`, made (mode 0600, never overwritten) if there is none yet.
    pub fn load_or_create(dir: &Path) -> Result<HashKey, KeyError> {
        let path = dir.join(KEY_FILE);
        match fs::File::open(&path) {
            Ok(mut file) => {
                let mut bytes = Vec::new();
                file.read_to_end(&mut bytes)
                    .map_err(|source| KeyError::Read {
                        path: path.clone(),
                        source,
                    })?;
                let key: [u8; KEY_BYTES] =
                    bytes.as_slice().try_into().map_err(|_| KeyError::Length {
                        path: path.clone(),
                        found: bytes.len(),
                    })?;
                Ok(HashKey { key })
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                let created = HashKey::random()?;
                let create = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path);
                match create {
                    Ok(mut file) => {
                        file.write_all(&created.key)
                            .and_then(|()| file.sync_all())
                            .map_err(|source| KeyError::Create {
                                path: path.clone(),
                                source,
                            })?;
                        Ok(created)
                    }
                    // Another process made it first: use theirs.
                    Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                        HashKey::load_or_create(dir)
                    }
                    Err(source) => Err(KeyError::Create { path, source }),
                }
            }
            Err(source) => Err(KeyError::Read { path, source }),
        }
    }

    /// A key for this process only (replays without a state directory, tests): tags correlate
    /// within the run, never across runs.
    pub fn random() -> Result<HashKey, KeyError> {
        let mut key = [0u8; KEY_BYTES];
        fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .map_err(KeyError::Random)?;
        Ok(HashKey { key })
    }

    /// A last resort when the system's randomness cannot be read: a key from the clock and the
    /// process id. Tags stay unguessable to anyone who does not know when the agent started.
    pub fn from_clock() -> HashKey {
        use sha2::Digest;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut hasher = Sha256::new();
        hasher.update(now.to_le_bytes());
        hasher.update(std::process::id().to_le_bytes());
        HashKey {
            key: hasher.finalize().into(),
        }
    }

    /// A fixed key, for tests that compare tags.
    pub fn from_bytes(key: [u8; KEY_BYTES]) -> HashKey {
        HashKey { key }
    }

    /// The tag of `value` as a type: HMAC-SHA256 over the type name and the value, in hex.
    pub fn tag(&self, type_name: &str, value: &str) -> String {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            // HMAC takes keys of any length; this branch cannot be reached.
            return String::new();
        };
        mac.update(type_name.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        hex(&digest[..TAG_HEX_CHARS / 2])
    }
}

/// `bytes` in lowercase hex, two digits each (tags and fingerprints; on the hot path, where a
/// `format!` per byte showed in profiles).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * bytes.len());
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn hex_is_two_lowercase_digits_per_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn the_key_is_made_once_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("observer-key-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let first = HashKey::load_or_create(&dir).unwrap();
        let mode = fs::metadata(dir.join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = HashKey::load_or_create(&dir).unwrap();
        assert_eq!(first.tag("email", "a@b.io"), second.tag("email", "a@b.io"));
        fs::write(dir.join(KEY_FILE), b"short").unwrap();
        assert!(matches!(
            HashKey::load_or_create(&dir),
            Err(KeyError::Length { .. })
        ));
        let _ = fs::remove_dir_all(&dir);
    }

    #[test]
    fn tags_depend_on_key_type_and_value() {
        let a = HashKey::from_bytes([1; 32]);
        let b = HashKey::from_bytes([2; 32]);
        assert_eq!(a.tag("email", "x").len(), TAG_HEX_CHARS);
        assert_ne!(a.tag("email", "x"), b.tag("email", "x"));
        assert_ne!(a.tag("email", "x"), a.tag("phone", "x"));
        assert_ne!(a.tag("email", "x"), a.tag("email", "y"));
    }
}
