//! `rrt id` and `rrt trust`: a device's identity, and the devices it lets in over TLS.

use anyhow::Context as _;
use clap::Subcommand;
use rrt_mesh::{DeviceId, Identity, TrustStore, WanAddress};

use crate::Locate;

#[derive(Debug, Subcommand)]
pub(crate) enum TrustCommand {
    /// Let the device with this id in (run `rrt id` on it to learn it).
    Add {
        /// Its id: 64 hexadecimal digits, colons allowed.
        id: DeviceId,
        /// A name to remember it by (a label: names may repeat, keys decide).
        #[arg(long)]
        name: Option<String>,
        /// A relay it is reachable through across networks (repeatable): keep a link to it
        /// over the wide-area transport, as pairing by ticket does.
        #[arg(long = "relay", value_name = "URL")]
        relays: Vec<rrt_mesh::RelayUrl>,
        /// A direct address of its wide-area transport (repeatable).
        #[arg(long = "addr", value_name = "ADDR")]
        addrs: Vec<std::net::SocketAddr>,
    },
    /// List the trusted devices.
    List,
    /// Stop trusting a device (its open connections end when they next reconnect).
    Remove {
        /// Its id.
        id: DeviceId,
    },
}

pub(crate) fn id(locate: &Locate) -> anyhow::Result<()> {
    let identity =
        Identity::load_or_create(&locate.state_dir()).context("loading this device's identity")?;
    println!("{}", identity.id());
    if let Some(aside) = identity.replaced() {
        eprintln!(
            "this device had an older version's identity (set aside in {}); it has a new id now: other devices must trust it again (join secret, `rrt invite`/`rrt join`, or `rrt trust add`)",
            aside.display()
        );
    }
    Ok(())
}

pub(crate) fn run(locate: &Locate, command: TrustCommand) -> anyhow::Result<()> {
    let store = TrustStore::new(&locate.state_dir());
    if let Some(aside) = store.set_aside_legacy()? {
        eprintln!(
            "the trust list of an older version was set aside in {} (it named certificates, not keys): trust those devices again by their new ids",
            aside.display()
        );
    }
    match command {
        TrustCommand::Add {
            id,
            name,
            relays,
            addrs,
        } if !relays.is_empty() || !addrs.is_empty() => {
            let relays = relays.iter().map(ToString::to_string).collect();
            store.add_reachable(id, name, WanAddress { relays, addrs })?;
            println!("trusted {id}, kept linked across networks");
        }
        TrustCommand::Add { id, name, .. } => {
            if store.add(id, name)? {
                println!("trusted {id}");
            } else {
                println!("{id} was already trusted");
            }
        }
        TrustCommand::List => {
            for device in store.list()? {
                println!("{}  {}", device.id, device.name.as_deref().unwrap_or("-"));
            }
        }
        TrustCommand::Remove { id } => {
            if store.remove(id)? {
                println!("no longer trusting {id}");
            } else {
                anyhow::bail!("{id} was not trusted");
            }
        }
    }
    Ok(())
}
