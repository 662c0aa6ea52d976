//! A device's identity: a persistent key and self-signed certificate, named by the SHA-256
//! fingerprint of the certificate (Syncthing's model). Created on first use under the state
//! directory, readable by its owner only; every instance of the user on this host shares it.

use std::{
    fmt, fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    str::FromStr,
};

use ring::digest::{SHA256, digest};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const CERT_FILE: &str = "device.crt.der";
const KEY_FILE: &str = "device.key.der";

/// The SHA-256 of a device's certificate: what `rrt id` prints and `rrt trust add` takes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER certificate.
    pub fn of(certificate: &[u8]) -> Self {
        let mut bytes = [0; 32];
        bytes.copy_from_slice(digest(&SHA256, certificate).as_ref());
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl serde::Serialize for Fingerprint {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

/// Another device as this one knows it: its key (what decides) and the name it goes by (a label
/// it chose; two devices may share one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Device {
    /// Its fingerprint (serialized as 64 hexadecimal digits).
    pub fingerprint: Fingerprint,
    /// The name it proved the join secret under, or was trusted under; `None` if it never said.
    pub name: Option<String>,
}

/// A fingerprint that is not 64 hexadecimal digits (colons and spaces are allowed between them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fingerprint is 64 hexadecimal digits (as `rrt id` prints it), not {0:?}")]
pub struct BadFingerprint(String);

impl FromStr for Fingerprint {
    type Err = BadFingerprint;

    fn from_str(text: &str) -> Result<Self, BadFingerprint> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|byte| !matches!(byte, b':' | b' '))
            .collect();
        let bad = || BadFingerprint(text.to_owned());
        if digits.len() != 64 {
            return Err(bad());
        }
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks(2)) {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(Self(bytes))
    }
}

/// Why the identity could not be loaded or created.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Reading or writing the key files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Generating the key or certificate failed.
    #[error("could not generate a device key: {0}")]
    Generate(#[from] rcgen::Error),
    /// The stored key or certificate does not load, or they do not belong together. Nothing is
    /// replaced on its own: a new key is a new device to every peer.
    #[error(
        "this device's identity in {dir} is damaged ({reason}); move the directory aside to create a new one — other devices will then see a new device, admitted again by the join secret or `rrt trust add`"
    )]
    Damaged {
        /// The identity directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// This device's certificate and key.
#[derive(Debug)]
pub struct Identity {
    certificate: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
    fingerprint: Fingerprint,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            certificate: self.certificate.clone(),
            key: self.key.clone_key(),
            fingerprint: self.fingerprint,
        }
    }
}

impl Identity {
    /// The identity kept in `<state_dir>/identity/`, created there on first use. Creation
    /// happens in a private directory renamed into place, so two daemons starting at once end up
    /// with the same identity, never half of one.
    pub fn load_or_create(state_dir: &Path) -> Result<Self, IdentityError> {
        let dir = state_dir.join("identity");
        if let Some(identity) = Self::load(&dir)? {
            return Ok(identity);
        }
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| IdentityError::Io { path, source }
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(io(state_dir))?;
        let draft = state_dir.join(format!("identity.{}.tmp", std::process::id()));
        let _ = fs::remove_dir_all(&draft);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&draft)
            .map_err(io(&draft))?;
        let generated = rcgen::generate_simple_self_signed(vec!["rrt.device".to_owned()])?;
        let key_path = draft.join(KEY_FILE);
        let cert_path = draft.join(CERT_FILE);
        write_private(&key_path, &generated.signing_key.serialize_der()).map_err(io(&key_path))?;
        write_private(&cert_path, generated.cert.der()).map_err(io(&cert_path))?;
        if fs::rename(&draft, &dir).is_err() {
            // Another daemon got there first: use its identity.
            let _ = fs::remove_dir_all(&draft);
        } else {
            tracing::info!(path = %dir.display(), "created this device's identity");
        }
        Self::load(&dir)?.ok_or_else(|| IdentityError::Io {
            path: dir,
            source: io::ErrorKind::NotFound.into(),
        })
    }

    fn load(dir: &Path) -> Result<Option<Self>, IdentityError> {
        let read = |name: &str| {
            let path = dir.join(name);
            match fs::read(&path) {
                Ok(bytes) => Ok(Some(bytes)),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(IdentityError::Io { path, source }),
            }
        };
        match (read(CERT_FILE)?, read(KEY_FILE)?) {
            (Some(certificate), Some(key)) => {
                let identity = Self::from_der(certificate, key);
                identity.check().map_err(|reason| IdentityError::Damaged {
                    dir: dir.to_owned(),
                    reason,
                })?;
                Ok(Some(identity))
            }
            (None, None) => Ok(None),
            (certificate, _) => Err(IdentityError::Damaged {
                dir: dir.to_owned(),
                reason: format!(
                    "{} is missing",
                    if certificate.is_none() {
                        CERT_FILE
                    } else {
                        KEY_FILE
                    }
                ),
            }),
        }
    }

    /// Whether the key loads and is the certificate's.
    fn check(&self) -> Result<(), String> {
        rustls::sign::CertifiedKey::from_der(
            vec![self.certificate()],
            self.key(),
            &rustls::crypto::ring::default_provider(),
        )
        .map(drop)
        .map_err(|error| error.to_string())
    }

    fn from_der(certificate: Vec<u8>, key: Vec<u8>) -> Self {
        Self {
            fingerprint: Fingerprint::of(&certificate),
            certificate: CertificateDer::from(certificate),
            key: PrivatePkcs8KeyDer::from(key),
        }
    }

    /// The device's fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.fingerprint
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(self.key.clone_key())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_persists_and_its_fingerprint_round_trips() {
        let dir = std::env::temp_dir().join(format!("rrt-identity-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let first = Identity::load_or_create(&dir).expect("created");
        let again = Identity::load_or_create(&dir).expect("loaded");
        assert_eq!(first.fingerprint(), again.fingerprint());
        let text = first.fingerprint().to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Fingerprint>(), Ok(first.fingerprint()));
        let colons: String = text
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).expect("hex"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<Fingerprint>(), Ok(first.fingerprint()));
        assert!("abc".parse::<Fingerprint>().is_err());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_damaged_identity_is_reported_not_replaced() {
        let dir = std::env::temp_dir().join(format!("rrt-identity-bad-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        Identity::load_or_create(&dir).expect("created");
        let key = dir.join("identity").join(KEY_FILE);
        fs::write(&key, b"garbage").expect("garble the key");
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(IdentityError::Damaged { .. })
        ));
        // Another device's key with our certificate: they do not belong together.
        let other = dir.with_extension("other");
        Identity::load_or_create(&other).expect("another");
        fs::copy(other.join("identity").join(KEY_FILE), &key).expect("swap the key");
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(IdentityError::Damaged { .. })
        ));
        fs::remove_file(&key).expect("lose the key");
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(IdentityError::Damaged { .. })
        ));
        // Nothing was replaced behind the user's back.
        assert!(dir.join("identity").join(CERT_FILE).exists());
        fs::remove_dir_all(dir).expect("cleanup");
        fs::remove_dir_all(other).expect("cleanup");
    }
}
