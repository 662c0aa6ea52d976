//! Which devices may join: ids the user trusted (`rrt trust add`) and those pinned after
//! proving the mesh's join secret.
//!
//! Trust is by key, never by name. A device's name is a label it chose (by default its host
//! name), and names collide: a fleet of `raspberrypi`s, two `ubuntu` VMs. Pinning a name to the
//! first key seen under it split such meshes for good, and protected nothing — whoever holds the
//! join secret can join under any name anyway. A device whose key changed is a new device: it
//! joins by proving the secret, a ticket, or `rrt trust add`.
//!
//! A trusted device's clipboard can be paused either way (`rrt trust pause`): a local preference,
//! kept with its trust and applied by the node as [`rrt_sync::Pauses`] (see there why a pause is
//! decided by the value, not the link).
//!
//! The file is versioned. Version 1 (no `version` field) held older versions' ids, hashes of
//! ECDSA certificates, which no device presents any more: such a file is read as empty and set
//! aside as `trusted.v1.json` ([`TrustStore::set_aside_legacy`], and before any change), so the
//! user can see what was trusted and trust those devices' new ids.

use std::{
    fs, io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};

use rrt_store::locked_file;

use crate::{identity::DeviceId, wan::address::WanAddress};

/// One trusted device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TrustedDevice {
    /// Its id, as `rrt id` prints it.
    pub id: DeviceId,
    /// Its name, if known (pinned devices always have one).
    pub name: Option<String>,
    /// When it was trusted, milliseconds since the Unix epoch.
    pub added_ms: u64,
    /// How to reach it across networks, for a device paired by a ticket: the wide-area
    /// transport keeps a link to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wan: Option<WanAddress>,
    /// Which ways its clipboard is paused.
    #[serde(default, skip_serializing_if = "Paused::is_none")]
    pub paused: Paused,
}

/// Which ways the clipboard is paused with a trusted device.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Paused {
    /// Copies made here are withheld from it.
    #[serde(default)]
    pub send: bool,
    /// Its copies are kept and relayed here, but not shown.
    #[serde(default)]
    pub receive: bool,
}

impl Paused {
    /// Neither way.
    pub fn is_none(&self) -> bool {
        *self == Self::default()
    }
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

/// The version of `trusted.json` this code writes.
const VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct TrustFile {
    version: u32,
    devices: Vec<TrustedDevice>,
}

/// Just the version of a trust file (an older one has none: version 1).
#[derive(Deserialize)]
struct Versioned {
    #[serde(default = "version_one")]
    version: u32,
}

fn version_one() -> u32 {
    1
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

    /// The verdict on the key `id`.
    pub fn judge(&self, id: DeviceId) -> io::Result<Verdict> {
        Ok(self
            .read()?
            .devices
            .into_iter()
            .find(|device| device.id == id)
            .map_or(Verdict::Unknown, |device| Verdict::Trusted {
                name: device.name,
            }))
    }

    /// Trusts `id` (under `name`, if given). Returns `false` if it already was.
    pub fn add(&self, id: DeviceId, name: Option<String>) -> io::Result<bool> {
        self.update(|devices| {
            if devices.iter().any(|device| device.id == id) {
                return false;
            }
            devices.push(TrustedDevice {
                id,
                name,
                added_ms: now_ms(),
                wan: None,
                paused: Paused::default(),
            });
            true
        })
    }

    /// Trusts `id` (paired by a ticket, or added with its address) under the label `name`, and
    /// remembers how to reach it across networks, replacing what was known of it (but its
    /// pauses): the wide-area transport keeps a link to it.
    pub fn add_reachable(
        &self,
        id: DeviceId,
        name: Option<String>,
        wan: WanAddress,
    ) -> io::Result<()> {
        self.update(|devices| {
            let paused = devices
                .iter()
                .find(|device| device.id == id)
                .map_or_else(Paused::default, |device| device.paused);
            devices.retain(|device| device.id != id);
            devices.push(TrustedDevice {
                id,
                name,
                added_ms: now_ms(),
                wan: Some(wan),
                paused,
            });
            true
        })
        .map(drop)
    }

    /// Changes which ways the clipboard is paused with the trusted device `id`; returns the
    /// pause now in effect, `None` if it is not trusted.
    pub fn set_paused(
        &self,
        id: DeviceId,
        change: impl FnOnce(&mut Paused),
    ) -> io::Result<Option<Paused>> {
        let mut now = None;
        self.update(|devices| {
            let Some(device) = devices.iter_mut().find(|device| device.id == id) else {
                return false;
            };
            let before = device.paused;
            change(&mut device.paused);
            now = Some(device.paused);
            device.paused != before
        })?;
        Ok(now)
    }

    /// The pauses of device `me`, as its node applies them.
    pub fn pauses(&self, me: DeviceId) -> io::Result<rrt_sync::Pauses> {
        let devices = self.list()?;
        let paused = |way: fn(&Paused) -> bool| {
            devices
                .iter()
                .filter(|device| way(&device.paused))
                .map(|device| device.id.to_string())
                .collect()
        };
        Ok(rrt_sync::Pauses {
            device: Some(me.to_string()),
            receive: paused(|paused| paused.receive),
            send: paused(|paused| paused.send),
        })
    }

    /// Stops trusting `id`. Returns `false` if it was not trusted.
    pub fn remove(&self, id: DeviceId) -> io::Result<bool> {
        self.update(|devices| {
            let before = devices.len();
            devices.retain(|device| device.id != id);
            devices.len() != before
        })
    }

    fn update(&self, change: impl FnOnce(&mut Vec<TrustedDevice>) -> bool) -> io::Result<bool> {
        fs::create_dir_all(&self.dir)?;
        let _lock = locked_file::lock(&self.dir.join("trusted.lock"))?;
        self.set_aside_unlocked()?;
        let mut file = self.read()?;
        let changed = change(&mut file.devices);
        if changed {
            let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
            locked_file::replace(&self.dir.join("trusted.json"), &bytes)?;
        }
        Ok(changed)
    }

    /// Sets an older version's `trusted.json` aside as `trusted.v1.json`; returns where, if
    /// there was one. Its entries name certificates no device presents any more.
    pub fn set_aside_legacy(&self) -> io::Result<Option<PathBuf>> {
        if !self.path().exists() {
            return Ok(None);
        }
        let _lock = locked_file::lock(&self.dir.join("trusted.lock"))?;
        self.set_aside_unlocked()
    }

    fn set_aside_unlocked(&self) -> io::Result<Option<PathBuf>> {
        let Some(bytes) = self.bytes()? else {
            return Ok(None);
        };
        let version = serde_json::from_slice::<Versioned>(&bytes).map_err(io::Error::other)?;
        if version.version >= VERSION {
            return Ok(None);
        }
        let aside = self.dir.join("trusted.v1.json");
        fs::rename(self.path(), &aside)?;
        tracing::warn!(
            old = %aside.display(),
            "the trust list of an older version (certificate hashes) was set aside: trust those devices' new ids again (`rrt id` on each)"
        );
        Ok(Some(aside))
    }

    fn bytes(&self) -> io::Result<Option<Vec<u8>>> {
        match fs::read(self.path()) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    fn read(&self) -> io::Result<TrustFile> {
        let Some(bytes) = self.bytes()? else {
            return Ok(TrustFile {
                version: VERSION,
                devices: Vec::new(),
            });
        };
        let version = serde_json::from_slice::<Versioned>(&bytes).map_err(io::Error::other)?;
        if version.version < VERSION {
            // Certificate hashes of older versions: they match no device's key.
            return Ok(TrustFile {
                version: VERSION,
                devices: Vec::new(),
            });
        }
        serde_json::from_slice(&bytes).map_err(io::Error::other)
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trust_is_by_key_and_names_may_collide() {
        let dir = std::env::temp_dir().join(format!("rrt-trust-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = TrustStore::new(&dir);
        let first = DeviceId::from_bytes([1; 32]);
        let second = DeviceId::from_bytes([2; 32]);
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

    #[test]
    fn a_pause_is_kept_with_the_trust_and_read_as_the_nodes_pauses() {
        let dir = std::env::temp_dir().join(format!("rrt-trust-pause-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let store = TrustStore::new(&dir);
        let me = DeviceId::from_bytes([9; 32]);
        let work = DeviceId::from_bytes([1; 32]);
        let phone = DeviceId::from_bytes([2; 32]);
        assert_eq!(
            store.set_paused(work, |p| p.send = true).expect("set"),
            None,
            "not trusted"
        );
        store.add(work, Some("work".into())).expect("add");
        store.add(phone, None).expect("add");
        let both = Paused {
            send: true,
            receive: true,
        };
        assert_eq!(
            store.set_paused(work, |p| *p = both).expect("set"),
            Some(both)
        );
        store.set_paused(phone, |p| p.receive = true).expect("set");
        // Pairing again by a ticket keeps the pause.
        store
            .add_reachable(work, Some("work".into()), WanAddress::default())
            .expect("add");
        let pauses = store.pauses(me).expect("pauses");
        assert_eq!(pauses.device, Some(me.to_string()));
        assert_eq!(
            pauses.receive,
            [work.to_string(), phone.to_string()].into_iter().collect()
        );
        assert_eq!(pauses.send, [work.to_string()].into_iter().collect());
        store
            .set_paused(work, |p| *p = Paused::default())
            .expect("resume");
        assert!(store.pauses(me).expect("pauses").send.is_empty());
        fs::remove_dir_all(dir).expect("cleanup");
    }

    #[test]
    fn an_older_versions_trust_list_is_set_aside_and_trusts_nothing() {
        let dir = std::env::temp_dir().join(format!("rrt-trust-v1-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        let key = DeviceId::from_bytes([3; 32]);
        let v1 = format!(r#"{{"devices":[{{"fingerprint":"{key}","name":"old","added_ms":1}}]}}"#);
        fs::write(dir.join("trusted.json"), v1).expect("v1");
        let store = TrustStore::new(&dir);
        assert_eq!(store.judge(key).expect("judge"), Verdict::Unknown);
        assert!(store.list().expect("list").is_empty());
        let aside = store
            .set_aside_legacy()
            .expect("set aside")
            .expect("there was one");
        assert!(aside.exists());
        assert_eq!(store.set_aside_legacy().expect("again"), None);
        assert!(store.add(key, None).expect("add"));
        assert_eq!(store.list().expect("list").len(), 1);
        fs::remove_dir_all(dir).expect("cleanup");
    }
}
