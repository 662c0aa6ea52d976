//! Which devices may join: fingerprints the user trusted (`rrt trust add`) and those pinned after
//! proving the mesh's join secret. A device name, once pinned to a key, keeps that key: another
//! key under the same name is refused as a key change.

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

/// What the trust store says about a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Its key is trusted.
    Trusted,
    /// Its name is pinned to another key: refuse it whatever else it proves.
    KeyChanged {
        /// The key the name is pinned to.
        pinned: String,
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

    /// Every trusted device.
    pub fn list(&self) -> io::Result<Vec<TrustedDevice>> {
        Ok(self.read()?.devices)
    }

    /// The verdict on `fingerprint`, which calls itself `name` (when it said).
    pub fn judge(&self, fingerprint: Fingerprint, name: Option<&str>) -> io::Result<Verdict> {
        let text = fingerprint.to_string();
        let devices = self.read()?.devices;
        if devices.iter().any(|device| device.fingerprint == text) {
            return Ok(Verdict::Trusted);
        }
        let pinned = devices
            .into_iter()
            .find(|device| name.is_some() && device.name.as_deref() == name);
        Ok(match pinned {
            Some(device) => Verdict::KeyChanged {
                pinned: device.fingerprint,
            },
            None => Verdict::Unknown,
        })
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
    fn trust_pin_and_key_change() {
        let dir = std::env::temp_dir().join(format!("rrt-trust-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = TrustStore::new(&dir);
        let laptop = Fingerprint::of(b"laptop certificate");
        let impostor = Fingerprint::of(b"another key");
        assert_eq!(
            store.judge(laptop, Some("laptop")).expect("judge"),
            Verdict::Unknown
        );
        assert!(store.add(laptop, Some("laptop".into())).expect("add"));
        assert!(!store.add(laptop, None).expect("again"));
        assert_eq!(store.judge(laptop, None).expect("judge"), Verdict::Trusted);
        assert_eq!(
            store.judge(impostor, Some("laptop")).expect("judge"),
            Verdict::KeyChanged {
                pinned: laptop.to_string()
            }
        );
        assert_eq!(
            store.judge(impostor, Some("desk")).expect("judge"),
            Verdict::Unknown
        );
        assert!(store.remove(laptop).expect("remove"));
        assert!(store.list().expect("list").is_empty());
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
