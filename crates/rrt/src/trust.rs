//! `rrt id` and `rrt trust`: a device's identity, and the devices it lets in over TLS.

use anyhow::Context as _;
use clap::Subcommand;
use rrt_mesh::{
    identity::{Fingerprint, Identity},
    trust::TrustStore,
};

use crate::Locate;

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Let the device with this fingerprint in (run `rrt id` on it to learn it).
    Add {
        /// Its fingerprint: 64 hexadecimal digits, colons allowed.
        fingerprint: Fingerprint,
        /// A name to remember it by (a label: names may repeat, keys decide).
        #[arg(long)]
        name: Option<String>,
    },
    /// List the trusted devices.
    List,
    /// Stop trusting a device (its open connections end when they next reconnect).
    Remove {
        /// Its fingerprint.
        fingerprint: Fingerprint,
    },
}

pub(crate) fn id(locate: &Locate) -> anyhow::Result<()> {
    let identity =
        Identity::load_or_create(&locate.state_dir()).context("loading this device's identity")?;
    println!("{}", identity.fingerprint());
    Ok(())
}

pub(crate) fn run(locate: &Locate, command: TrustCommand) -> anyhow::Result<()> {
    let store = TrustStore::new(&locate.state_dir());
    match command {
        TrustCommand::Add { fingerprint, name } => {
            if store.add(fingerprint, name)? {
                println!("trusted {fingerprint}");
            } else {
                println!("{fingerprint} was already trusted");
            }
        }
        TrustCommand::List => {
            for device in store.list()? {
                println!(
                    "{}  {}",
                    device.fingerprint,
                    device.name.as_deref().unwrap_or("-")
                );
            }
        }
        TrustCommand::Remove { fingerprint } => {
            if store.remove(fingerprint)? {
                println!("no longer trusting {fingerprint}");
            } else {
                anyhow::bail!("{fingerprint} was not trusted");
            }
        }
    }
    Ok(())
}
