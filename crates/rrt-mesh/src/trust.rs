//! Which devices may join: fingerprints the user trusted (`rrt trust add`) and those pinned after
//! proving the mesh's join secret.
//!
//! Trust is by key, never by name. A device's name is a label it chose (by default its host
//! name), and names collide: a fleet of `raspberrypi`s, two `ubuntu` VMs. Pinning a name to the
//! first key seen under it split such meshes for good, and protected nothing — whoever holds the
//! join secret can join under any name anyway. A device whose key changed is a new device: it
//! joins by proving the secret, or by `rrt trust add`.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use rrt_sync::locked_file;

use crate::identity::Fingerprint;

/// One trusted device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    /// Its fingerprint, as `rrt id` prints it.
    pub fingerprint: String,
    /// Its name, if known (pinned devices always have one).
    pub name: Option<String>,
    /// When it was trusted, milliseconds since the Unix epoch.
    pub added_ms: u64,
}

/// What the trust store says about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The key is trusted; the name it was trusted under, if any (a label).
    Trusted {
        /// The name remembered with it.
        name: Option<String>,
    },
    /// Nothing is known of it.
    Unknown,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    devices: Vec<TrustedDevice>,
}

/// `trusted.json` in the state directory, changed under an exclusive lock and replaced atomically.
#[derive(Debug, Clone)]
pub struct TrustStore {
    dir: PathBuf,
}

impl TrustStore {
    /// The store in `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.to_owned(),
        }
    }

    /// The file the store lives in.
    pub fn path(&self) -> PathBuf {
        self.dir.join("trusted.json")
    }

    /// Every trusted device.
    pub fn list(&self) -> io::Result<Vec<TrustedDevice>> {
        Ok(self.read()?.devices)
    }

    /// The verdict on the key `fingerprint`.
    pub fn judge(&self, fingerprint: Fingerprint) -> io::Result<Verdict> {
        let text = fingerprint.to_string();
        Ok(self
            .read()?
            .devices
            .into_iter()
            .find(|device| device.fingerprint == text)
            .map_or(Verdict::Unknown, |device| Verdict::Trusted {
                name: device.name,
            }))
    }

    /// Trusts `fingerprint` (under `name`, if given). Returns `false` if it already was.
    pub fn add(&self, fingerprint: Fingerprint, name: Option<String>) -> io::Result<bool> {
        self.update(|devices| {
            let text = fingerprint.to_string();
            if devices.iter().any(|device| device.fingerprint == text) {
                return false;
            }
            devices.push(TrustedDevice {
                fingerprint: text,
                name,
                added_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            });
            true
        })
    }

    /// Stops trusting `fingerprint`. Returns `false` if it was not trusted.
    pub fn remove(&self, fingerprint: Fingerprint) -> io::Result<bool> {
        self.update(|devices| {
            let text = fingerprint.to_string();
            let before = devices.len();
            devices.retain(|device| device.fingerprint != text);
            devices.len() != before
        })
    }

    fn update(&self, change: impl FnOnce(&mut Vec<TrustedDevice>) -> bool) -> io::Result<bool> {
        fs::create_dir_all(&self.dir)?;
        let _lock = locked_file::lock(&self.dir.join("trusted.lock"))?;
        let mut file = self.read()?;
        let changed = change(&mut file.devices);
        if changed {
            let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
            locked_file::replace(&self.dir.join("trusted.json"), &bytes)?;
        }
        Ok(changed)
    }

    fn read(&self) -> io::Result<TrustFile> {
        match fs::read(self.dir.join("trusted.json")) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(io::Error::other),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(TrustFile::default()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_by_key_and_names_may_collide() {
        let dir = std::env::temp_dir().join(format!("rrt-trust-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = TrustStore::new(&dir);
        let first = Fingerprint::of(b"one raspberrypi");
        let second = Fingerprint::of(b"another raspberrypi");
        assert_eq!(store.judge(first).expect("judge"), Verdict::Unknown);
        assert!(store.add(first, Some("raspberrypi".into())).expect("add"));
        assert!(!store.add(first, None).expect("again"));
        // Another key under the same name is simply another device.
        assert_eq!(store.judge(second).expect("judge"), Verdict::Unknown);
        assert!(store.add(second, Some("raspberrypi".into())).expect("add"));
        for key in [first, second] {
            assert_eq!(
                store.judge(key).expect("judge"),
                Verdict::Trusted {
                    name: Some("raspberrypi".into())
                }
            );
        }
        assert!(store.remove(first).expect("remove"));
        assert_eq!(store.judge(first).expect("judge"), Verdict::Unknown);
        assert_eq!(store.list().expect("list").len(), 1);
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
