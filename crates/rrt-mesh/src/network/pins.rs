//! Pins keys that proved the join secret into the trust store off the reactor thread: the
//! store is a file changed under a lock and synced, and the reactor thread must not wait on a
//! disk. A helper thread, started at the first pin, writes them in order; the worker's drop
//! waits for it, so no pin is lost when the reactor stops.
//!
//! ```text
//!  Admission ─Output::Pin─▶ worker ─pin()─▶ channel ─▶ helper thread ─▶ TrustStore::add
//! ```
//!
//! Until a pin is on disk, a reconnecting device is simply unknown again and proves the secret
//! again (a device that has it always sends its proof first).

use std::{
    sync::mpsc,
    thread::{self, JoinHandle},
};

use crate::{identity::DeviceId, trust::TrustStore};

type Pin = (DeviceId, String);

/// The trust store's writer.
pub(super) struct Pins {
    store: TrustStore,
    helper: Option<(mpsc::Sender<Pin>, JoinHandle<()>)>,
}

impl Pins {
    pub(super) fn new(store: TrustStore) -> Self {
        Self {
            store,
            helper: None,
        }
    }

    /// Trusts `id` under the label `name`, soon.
    pub(super) fn pin(&mut self, id: DeviceId, name: String) {
        if self.helper.is_none() {
            let store = self.store.clone();
            let (sender, pins) = mpsc::channel::<Pin>();
            let spawned = thread::Builder::new()
                .name("rrt-pin".to_owned())
                .spawn(move || {
                    for (id, name) in pins {
                        write(&store, id, name);
                    }
                });
            match spawned {
                Ok(thread) => self.helper = Some((sender, thread)),
                Err(error) => {
                    tracing::warn!(%error, "no thread to pin keys on; pinning on the reactor thread");
                    return write(&self.store, id, name);
                }
            }
        }
        if let Some((sender, _)) = &self.helper
            && let Err(mpsc::SendError((id, name))) = sender.send((id, name))
        {
            write(&self.store, id, name);
        }
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        if let Some((sender, thread)) = self.helper.take() {
            drop(sender);
            let _ = thread.join();
        }
    }
}

fn write(store: &TrustStore, id: DeviceId, name: String) {
    if let Err(error) = store.add(id, Some(name)) {
        // It proved the secret: it is in now, and gets in again by its proof next time.
        tracing::error!(%error, %id, "could not pin the device's key");
    }
}
