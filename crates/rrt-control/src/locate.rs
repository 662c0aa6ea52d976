//! Finding a mesh's daemons: the registry in the mesh directory lists each one's control
//! socket. The directory must be ours (not another user's, not a symbolic link): whoever owns it
//! writes the registry that says which socket is the daemon's, and would otherwise receive what
//! we copy.

use std::{io, path::Path};

use rrt_mesh::{DirError, MeshDir, Registry, RegistryEntry};

use crate::ControlError;

/// The daemons of one mesh of this user.
#[derive(Debug, Clone)]
pub struct Mesh {
    dir: MeshDir,
    name: String,
}

impl Mesh {
    /// The mesh `name`, under `runtime_dir` (default: `$XDG_RUNTIME_DIR/rrt`, as the daemon's).
    pub fn new(name: &str, runtime_dir: Option<&Path>) -> Self {
        Self {
            dir: MeshDir::locate(runtime_dir, name),
            name: name.to_owned(),
        }
    }

    /// Its directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Every daemon the registry lists (none while the mesh directory is not there).
    pub fn daemons(&self) -> Result<Vec<RegistryEntry>, ControlError> {
        match self.dir.verify() {
            Ok(()) => {
                Registry::new(self.dir.clone())
                    .list()
                    .map_err(|source| ControlError::Registry {
                        dir: self.dir.path().to_owned(),
                        source,
                    })
            }
            Err(DirError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                Ok(Vec::new())
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The daemon named `instance`, or any of the mesh's when `None`.
    pub fn daemon(&self, instance: Option<&str>) -> Result<RegistryEntry, ControlError> {
        let daemons = self.daemons()?;
        let found = match instance {
            Some(name) => daemons.into_iter().find(|entry| entry.name == name),
            None => daemons.into_iter().next(),
        };
        found.ok_or_else(|| match instance {
            Some(name) => ControlError::NoSuchDaemon {
                name: name.to_owned(),
                mesh: self.name.clone(),
            },
            None => ControlError::NoDaemon {
                mesh: self.name.clone(),
                dir: self.dir.path().to_owned(),
            },
        })
    }
}
