//! A device's identity: one Ed25519 key. Its public half is the device's id — what `rrt id`
//! prints, what trust lists hold, what the LAN's TLS certificate carries and what the wide-area
//! transport (iroh) dials as the endpoint id. One key for both, so a device is the same device on
//! the LAN and beyond it, and a ticket or a trust entry names it once.
//!
//! The key is kept under the state directory (PKCS#8, RFC 8410, readable by its owner only) and
//! shared by every instance of the user on this host; the certificate is made from it at each
//! load (self-signed: only the key inside it counts).
//!
//! Older versions kept an ECDSA P-256 key and named a device by the SHA-256 of its certificate.
//! Such a key cannot become an Ed25519 one, so it is **replaced**: the old directory is set aside
//! (`identity.legacy-<time>`), a new key is made, and [`Identity::replaced`] says so, for the
//! daemon and `rrt id` to tell the user that other devices must trust the new id again (by the
//! join secret, a ticket, or `rrt trust add`).

use std::{
    fmt, fs,
    io::{self, Write},
    os::unix::fs::{DirBuilderExt, OpenOptionsExt},
    path::{Path, PathBuf},
    str::FromStr,
    time::{SystemTime, UNIX_EPOCH},
};

use ring::rand::{SecureRandom, SystemRandom};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const KEY_FILE: &str = "device.key.der";
/// The certificate file of older versions (the certificate is now made from the key).
const LEGACY_CERT_FILE: &str = "device.crt.der";
/// PKCS#8 v1 for an Ed25519 key (RFC 8410 § 7): this prefix, then the 32-byte seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// A SubjectPublicKeyInfo for an Ed25519 key (RFC 8410 § 4): this prefix, then the 32-byte key.
const SPKI_ED25519_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// A device's id: its Ed25519 public key. What `rrt id` prints (64 hexadecimal digits, the form
/// iroh prints an endpoint id in), what `rrt trust add` and tickets take.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DeviceId([u8; 32]);

impl DeviceId {
    /// The id made of these key bytes (not checked to be a point on the curve: an id is
    /// compared, never used to verify anything here).
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The id of the key a DER certificate carries, if it is an Ed25519 key.
    pub fn of_certificate(certificate: &[u8]) -> Result<Self, ForeignCertificate> {
        let der = CertificateDer::from(certificate);
        let parsed = webpki::EndEntityCert::try_from(&der).map_err(|_| ForeignCertificate)?;
        let spki = parsed.subject_public_key_info();
        let key = spki
            .as_ref()
            .strip_prefix(&SPKI_ED25519_PREFIX[..])
            .ok_or(ForeignCertificate)?;
        Ok(Self(key.try_into().map_err(|_| ForeignCertificate)?))
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 8 hexadecimal digits, to tell devices apart in a table.
    pub fn short(&self) -> String {
        self.to_string()[..8].to_owned()
    }
}

/// A certificate whose key is not Ed25519: a device of an rrt older than device ids by key, or
/// not rrt at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the peer's certificate carries no Ed25519 key (an rrt older than ids by key: upgrade it)")]
pub struct ForeignCertificate;

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl serde::Serialize for DeviceId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for DeviceId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceId({self})")
    }
}

/// Another device as this one knows it: its key (what decides) and the name it goes by (a label
/// it chose; two devices may share one).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Device {
    /// Its id (serialized as 64 hexadecimal digits).
    pub id: DeviceId,
    /// The name it proved the join secret under, or was trusted under; `None` if it never said.
    pub name: Option<String>,
}

/// A device id that is not 64 hexadecimal digits (colons and spaces are allowed between them).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a device id is 64 hexadecimal digits (as `rrt id` prints it), not {0:?}")]
pub struct BadDeviceId(String);

impl FromStr for DeviceId {
    type Err = BadDeviceId;

    fn from_str(text: &str) -> Result<Self, BadDeviceId> {
        let digits: Vec<u8> = text
            .bytes()
            .filter(|byte| !matches!(byte, b':' | b' '))
            .collect();
        let bad = || BadDeviceId(text.to_owned());
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
    /// Reading or writing the key file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Making the certificate failed.
    #[error("could not make this device's certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// No randomness for a new key (or no key could be made of it).
    #[error("could not draw a new device key from the system's randomness")]
    Random,
    /// The stored key is neither this version's nor an older version's. Nothing is replaced on
    /// its own: a new key is a new device to every peer.
    #[error(
        "this device's identity in {dir} is damaged ({reason}); move the directory aside to create a new one — other devices will then see a new device, admitted again by the join secret, a ticket or `rrt trust add`"
    )]
    Damaged {
        /// The identity directory.
        dir: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// This device's key, its id and its certificate.
#[derive(Debug)]
pub struct Identity {
    seed: [u8; 32],
    certificate: CertificateDer<'static>,
    id: DeviceId,
    replaced: Option<PathBuf>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self {
            seed: self.seed,
            certificate: self.certificate.clone(),
            id: self.id,
            replaced: self.replaced.clone(),
        }
    }
}

impl Identity {
    /// The identity kept in `<state_dir>/identity/`, created there on first use. Creation
    /// happens in a private directory renamed into place, so two daemons starting at once end up
    /// with the same identity, never half of one. An older version's identity is set aside and
    /// replaced ([`Identity::replaced`]).
    pub fn load_or_create(state_dir: &Path) -> Result<Self, IdentityError> {
        let dir = state_dir.join("identity");
        let mut replaced = None;
        match read_seed(&dir)? {
            Stored::Seed(seed) => return Self::from_seed(seed, None),
            Stored::Nothing => {}
            Stored::Legacy => {
                let aside = set_aside(&dir)?;
                tracing::warn!(
                    old = %aside.display(),
                    "this device's identity was an older version's (ECDSA, named by its certificate's hash); it is replaced by an Ed25519 key, and other devices must trust the new id again (join secret, ticket, or `rrt trust add`)"
                );
                replaced = Some(aside);
            }
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
        let mut seed = [0; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .map_err(|_| IdentityError::Random)?;
        let key_path = draft.join(KEY_FILE);
        write_private(&key_path, &pkcs8(&seed)).map_err(io(&key_path))?;
        if fs::rename(&draft, &dir).is_err() {
            // Another daemon got there first: use its identity.
            let _ = fs::remove_dir_all(&draft);
        } else {
            tracing::info!(path = %dir.display(), "created this device's identity");
        }
        match read_seed(&dir)? {
            Stored::Seed(seed) => Self::from_seed(seed, replaced),
            _ => Err(IdentityError::Damaged {
                dir,
                reason: "it vanished while being created".to_owned(),
            }),
        }
    }

    fn from_seed(seed: [u8; 32], replaced: Option<PathBuf>) -> Result<Self, IdentityError> {
        let pkcs8 = pkcs8(&seed);
        let key = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(pkcs8.as_slice()),
            &rcgen::PKCS_ED25519,
        )?;
        let certificate = rcgen::CertificateParams::new(vec!["rrt.device".to_owned()])?
            .self_signed(&key)?
            .der()
            .clone();
        let public = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|_| IdentityError::Random)?;
        let id = DeviceId(
            ring::signature::KeyPair::public_key(&public)
                .as_ref()
                .try_into()
                .map_err(|_| IdentityError::Random)?,
        );
        Ok(Self {
            seed,
            certificate,
            id,
            replaced,
        })
    }

    /// The device's id.
    pub fn id(&self) -> DeviceId {
        self.id
    }

    /// Where an older version's identity was set aside, if this load replaced one.
    pub fn replaced(&self) -> Option<&Path> {
        self.replaced.as_deref()
    }

    /// The Ed25519 secret key's 32 bytes (the wide-area transport's endpoint key).
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.seed
    }

    pub(crate) fn certificate(&self) -> CertificateDer<'static> {
        self.certificate.clone()
    }

    pub(crate) fn key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pkcs8(&self.seed)))
    }
}

/// What the identity directory holds.
enum Stored {
    Nothing,
    Seed([u8; 32]),
    /// An older version's ECDSA key and certificate.
    Legacy,
}

fn read_seed(dir: &Path) -> Result<Stored, IdentityError> {
    let path = dir.join(KEY_FILE);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return if dir.join(LEGACY_CERT_FILE).exists() {
                Err(IdentityError::Damaged {
                    dir: dir.to_owned(),
                    reason: format!("{KEY_FILE} is missing"),
                })
            } else {
                Ok(Stored::Nothing)
            };
        }
        Err(source) => return Err(IdentityError::Io { path, source }),
    };
    if let Some(seed) = bytes.strip_prefix(&PKCS8_ED25519_PREFIX[..])
        && let Ok(seed) = <[u8; 32]>::try_from(seed)
    {
        return Ok(Stored::Seed(seed));
    }
    let legacy = fs::read(dir.join(LEGACY_CERT_FILE)).is_ok_and(|certificate| {
        rustls::sign::CertifiedKey::from_der(
            vec![CertificateDer::from(certificate)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(bytes)),
            &rustls::crypto::ring::default_provider(),
        )
        .is_ok()
    });
    if legacy {
        Ok(Stored::Legacy)
    } else {
        Err(IdentityError::Damaged {
            dir: dir.to_owned(),
            reason: format!("{KEY_FILE} is not an Ed25519 key"),
        })
    }
}

/// Renames `dir` to `identity.legacy-<unix seconds>` beside it.
fn set_aside(dir: &Path) -> Result<PathBuf, IdentityError> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let aside = dir.with_file_name(format!("identity.legacy-{seconds}"));
    fs::rename(dir, &aside).map_err(|source| IdentityError::Io {
        path: dir.to_owned(),
        source,
    })?;
    Ok(aside)
}

fn pkcs8(seed: &[u8; 32]) -> Vec<u8> {
    [&PKCS8_ED25519_PREFIX[..], seed].concat()
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

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rrt-identity-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn an_identity_persists_and_its_id_round_trips() {
        let dir = scratch("persists");
        let first = Identity::load_or_create(&dir).expect("created");
        let again = Identity::load_or_create(&dir).expect("loaded");
        assert_eq!(first.id(), again.id());
        assert!(first.replaced().is_none());
        let text = first.id().to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<DeviceId>(), Ok(first.id()));
        let colons: String = text
            .as_bytes()
            .chunks(2)
            .map(|pair| std::str::from_utf8(pair).expect("hex"))
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(colons.parse::<DeviceId>(), Ok(first.id()));
        assert!("abc".parse::<DeviceId>().is_err());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn the_id_is_the_ed25519_public_key_of_the_seed() {
        let dir = scratch("ed25519");
        let identity = Identity::load_or_create(&dir).expect("created");
        let pair =
            ring::signature::Ed25519KeyPair::from_seed_unchecked(&identity.seed()).expect("a seed");
        use ring::signature::KeyPair as _;
        assert_eq!(identity.id().as_bytes(), pair.public_key().as_ref());
        // The key rustls signs with is the same key.
        rustls::sign::CertifiedKey::from_der(
            vec![identity.certificate()],
            identity.key(),
            &rustls::crypto::ring::default_provider(),
        )
        .expect("key and certificate belong together");
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn an_older_versions_identity_is_set_aside_and_replaced() {
        let dir = scratch("legacy");
        let identity_dir = dir.join("identity");
        fs::create_dir_all(&identity_dir).expect("dir");
        let old = rcgen::generate_simple_self_signed(vec!["rrt.device".to_owned()]).expect("ecdsa");
        fs::write(identity_dir.join(LEGACY_CERT_FILE), old.cert.der()).expect("cert");
        fs::write(identity_dir.join(KEY_FILE), old.signing_key.serialize_der()).expect("key");
        let identity = Identity::load_or_create(&dir).expect("replaced");
        let aside = identity.replaced().expect("says it replaced one");
        assert!(aside.join(KEY_FILE).exists(), "the old key is kept aside");
        assert_eq!(
            Identity::load_or_create(&dir).expect("loaded").id(),
            identity.id()
        );
        assert!(
            DeviceId::of_certificate(old.cert.der()).is_err(),
            "an ECDSA certificate names no device"
        );
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn a_damaged_identity_is_reported_not_replaced() {
        let dir = scratch("damaged");
        Identity::load_or_create(&dir).expect("created");
        let key = dir.join("identity").join(KEY_FILE);
        fs::write(&key, b"garbage").expect("garble the key");
        assert!(matches!(
            Identity::load_or_create(&dir),
            Err(IdentityError::Damaged { .. })
        ));
        assert!(key.exists(), "nothing was replaced behind the user's back");
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
