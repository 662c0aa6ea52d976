//! `rrt id` and `rrt trust`: a device's identity, the devices it lets in over TLS, and which of
//! them its clipboard is paused with.

use anyhow::Context as _;
use clap::{Args, Subcommand};
use rrt_mesh::{DeviceId, Identity, Paused, TrustStore, WanAddress};

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
    /// List the trusted devices (and which ways each is paused).
    List,
    /// Pause the clipboard with a trusted device, both ways unless --send or --receive says
    /// one: copies made here while sending is paused are withheld from it; its copies are
    /// kept and passed on to other devices, but not shown here while receiving is paused. The
    /// running daemons apply it at once.
    Pause(PauseArgs),
    /// Resume what `pause` paused (both ways unless --send or --receive says one).
    Resume(PauseArgs),
    /// Stop trusting a device (its open connections end when they next reconnect).
    Remove {
        /// Its id.
        id: DeviceId,
    },
}

/// A device and which ways of its pause to change.
#[derive(Debug, Args)]
pub(crate) struct PauseArgs {
    /// Its id.
    id: DeviceId,
    /// Only what this device sends to it.
    #[arg(long)]
    send: bool,
    /// Only what it sends to this device.
    #[arg(long)]
    receive: bool,
}

impl PauseArgs {
    /// Sets the ways named (both when none is) to `paused`.
    fn apply(&self, to: &mut Paused, paused: bool) {
        let both = !self.send && !self.receive;
        if self.send || both {
            to.send = paused;
        }
        if self.receive || both {
            to.receive = paused;
        }
    }
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
                let name = device.name.as_deref().unwrap_or("-");
                match paused_ways(device.paused) {
                    Some(ways) => println!("{}  {name}  (paused: {ways})", device.id),
                    None => println!("{}  {name}", device.id),
                }
            }
        }
        TrustCommand::Pause(args) => set_paused(locate, &store, &args, true)?,
        TrustCommand::Resume(args) => set_paused(locate, &store, &args, false)?,
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

/// Which ways `paused` pauses, in words; `None` for neither.
fn paused_ways(paused: Paused) -> Option<&'static str> {
    match (paused.send, paused.receive) {
        (true, true) => Some("send, receive"),
        (true, false) => Some("send"),
        (false, true) => Some("receive"),
        (false, false) => None,
    }
}

/// Pauses or resumes, in the trust store, then has every running daemon of this user on this
/// host read it again (of every mesh: the trust store is the device's).
fn set_paused(
    locate: &Locate,
    store: &TrustStore,
    args: &PauseArgs,
    paused: bool,
) -> anyhow::Result<()> {
    let sending_paused = store
        .list()?
        .iter()
        .filter(|d| d.paused.send && d.id != args.id)
        .count();
    if paused && (args.send || !args.receive) && sending_paused >= rrt_sync::MAX_WITHHELD {
        anyhow::bail!(
            "sending is paused to {sending_paused} devices already, the most a copy can name; resume one first"
        );
    }
    let Some(now) = store.set_paused(args.id, |ways| args.apply(ways, paused))? else {
        anyhow::bail!(
            "{} is not trusted (`rrt trust list` lists the devices that are)",
            args.id
        );
    };
    match paused_ways(now) {
        Some(ways) => println!("{}: paused ({ways})", args.id),
        None => println!("{}: not paused", args.id),
    }
    let daemons = crate::client::every_meshs_daemons(locate)?;
    if daemons.is_empty() {
        println!("no daemon runs: it applies when one starts");
    }
    for daemon in daemons {
        let applied =
            crate::client::answering(&daemon).and_then(|mut client| Ok(client.read_pauses()?));
        match applied {
            Ok(_) => println!("applied by daemon {:?}", daemon.name),
            Err(error) => eprintln!(
                "daemon {:?} could not be told ({error:#}): it applies when it starts again or gets SIGHUP",
                daemon.name
            ),
        }
    }
    Ok(())
}
