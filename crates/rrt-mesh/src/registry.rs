//! `peers.json`: the instances of a mesh on this host, for humans and for the CLI to find a
//! daemon. Peers find each other by their sockets (and the directory watch), not through this
//! file, so a stale entry never misleads them; every writer prunes dead pids anyway.
//!
//! Every change is a read-modify-write under an exclusive `flock`, written to a temporary file
//! and renamed into place, so readers always see a whole file. Readers and writers alike reach
//! the lock, the file and the temporary file through one descriptor of the mesh directory,
//! checked to be ours ([`PrivateDir`]): a link planted there, or the directory swapped for
//! someone else's, never makes us read their registry or write through their link.

use std::{io, path::PathBuf};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use rrt_store::locked_file::PrivateDir;

use crate::dir::{MeshDir, REGISTRY, REGISTRY_LOCK, is_alive};

/// One running instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryEntry {
    /// Its process id.
    pub pid: u32,
    /// Its instance id.
    pub instance_id: Uuid,
    /// Its name.
    pub name: String,
    /// Where peers connect.
    pub peer_socket: PathBuf,
    /// Where the CLI connects.
    pub control_socket: PathBuf,
    /// When it started, milliseconds since the Unix epoch.
    pub started_ms: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct RegistryFile {
    instances: Vec<RegistryEntry>,
}

/// Reads and changes a mesh's `peers.json`.
#[derive(Debug, Clone)]
pub struct Registry {
    dir: MeshDir,
}

impl Registry {
    /// The registry of the mesh in `dir`.
    pub fn new(dir: MeshDir) -> Self {
        Self { dir }
    }

    /// The live instances (dead pids left out); none when the mesh directory does not exist.
    pub fn list(&self) -> io::Result<Vec<RegistryEntry>> {
        let dir = match PrivateDir::open(self.dir.path()) {
            Ok(dir) => dir,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        let mut instances = read(&dir)?.instances;
        instances.retain(|entry| is_alive(entry.pid));
        Ok(instances)
    }

    /// Adds (or replaces) `entry`, pruning dead instances.
    pub fn register(&self, entry: RegistryEntry) -> io::Result<()> {
        self.update(|instances| {
            instances.retain(|other| other.pid != entry.pid);
            instances.push(entry);
        })
    }

    /// Removes the instance with `pid`, pruning dead instances.
    pub fn unregister(&self, pid: u32) -> io::Result<()> {
        self.update(|instances| instances.retain(|entry| entry.pid != pid))
    }

    fn update(&self, change: impl FnOnce(&mut Vec<RegistryEntry>)) -> io::Result<()> {
        let dir = PrivateDir::open(self.dir.path())?;
        let _lock = dir.lock(REGISTRY_LOCK)?;
        let mut file = read(&dir)?;
        file.instances.retain(|entry| is_alive(entry.pid));
        change(&mut file.instances);
        file.instances.sort_by_key(|entry| entry.pid);
        let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        dir.replace(REGISTRY, &bytes)
    }
}

fn read(dir: &PrivateDir) -> io::Result<RegistryFile> {
    match dir.read(REGISTRY)? {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(%error, "peers.json is unreadable; rebuilding it");
            RegistryFile::default()
        })),
        None => Ok(RegistryFile::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pid: u32, name: &str) -> RegistryEntry {
        RegistryEntry {
            pid,
            instance_id: Uuid::from_u128(u128::from(pid)),
            name: name.into(),
            peer_socket: PathBuf::from(format!("/x/peer-{pid}.sock")),
            control_socket: PathBuf::from(format!("/x/control-{pid}.sock")),
            started_ms: 0,
        }
    }

    #[test]
    fn register_list_unregister_and_dead_pids_pruned() {
        let base = std::env::temp_dir().join(format!("rrt-registry-test-{}", std::process::id()));
        let dir = MeshDir::locate(Some(&base), "m");
        dir.prepare().expect("dir");
        let registry = Registry::new(dir);
        let me = std::process::id();
        registry.register(entry(me, "me")).expect("register");
        registry
            .register(entry(u32::MAX - 1, "dead"))
            .expect("register dead");
        let names: Vec<_> = registry
            .list()
            .expect("list")
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, ["me"]);
        registry.unregister(me).expect("unregister");
        assert!(registry.list().expect("list").is_empty());
        std::fs::remove_dir_all(base).expect("cleanup");
    }
}
