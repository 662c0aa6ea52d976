//! `rrt invite` and `rrt join`: pairing two devices by a one-time ticket, asking the running
//! daemon (which owns the wide-area endpoint) and showing the person what to compare.
//!
//! ```text
//!  rrt invite ─▶ {"op":"invite"} ─▶ ticket (stdout line 1, then a QR code on a terminal)
//!  rrt join T ─▶ {"op":"join"}   ─▶ both show the same code ─▶ y/n (or --yes) ─▶ {"op":"confirm"}
//!  both ─▶ "paired with NAME (ID)", exit 0 — or the reason, exit 1; nothing trusted
//! ```

use std::{
    io::{self, BufRead as _, IsTerminal as _, Write as _},
    time::Duration,
};

use anyhow::{Context as _, bail};
use clap::Args;
use rrt_control::{Client, Events};
use rrt_mesh::PairingEvent;

use crate::{
    Locate,
    client::{self, connect},
};

#[derive(Debug, Args)]
pub(crate) struct InviteArgs {
    /// How long the ticket stands, in seconds.
    #[arg(long, default_value_t = 600)]
    ttl: u64,
    /// Confirm the code without asking (scripts, tests).
    #[arg(long)]
    yes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct JoinArgs {
    /// The ticket `rrt invite` printed on the other device.
    ticket: String,
    /// Confirm the code without asking (scripts, tests).
    #[arg(long)]
    yes: bool,
}

pub(crate) fn invite(locate: &Locate, args: &InviteArgs) -> anyhow::Result<()> {
    let client = pairing_client(&wan_daemon(locate)?)?;
    converse(client.invite(Duration::from_secs(args.ttl))?, args.yes)
}

pub(crate) fn join(locate: &Locate, args: &JoinArgs) -> anyhow::Result<()> {
    let ticket = args.ticket.trim().to_owned();
    ticket
        .parse::<rrt_mesh::Ticket>()
        .context("reading the ticket")?;
    let client = pairing_client(&wan_daemon(locate)?)?;
    converse(client.join(&ticket)?, args.yes)
}

/// A connection for a pairing: a person may take minutes to compare codes (the daemon gives up
/// after 5).
fn pairing_client(locate: &Locate) -> anyhow::Result<Client> {
    let client = connect(locate)?;
    client.set_timeout(Some(Duration::from_secs(15 * 60)))?;
    Ok(client)
}

/// The daemon to pair through: `--instance` if given, else the one of the mesh's daemons that
/// runs the host's wide-area endpoint (one holds it; the others reach other networks through
/// it), else any (which then says why it cannot).
fn wan_daemon(locate: &Locate) -> anyhow::Result<Locate> {
    if locate.instance.is_some() {
        return Ok(locate.clone());
    }
    for entry in client::instances(locate)? {
        let asked = Locate {
            instance: Some(entry.name),
            ..locate.clone()
        };
        let running = client::client(&asked)
            .and_then(|mut client| Ok(client.status()?))
            .is_ok_and(|status| status.wan.is_some_and(|wan| wan.running));
        if running {
            return Ok(asked);
        }
    }
    Ok(locate.clone())
}

/// Follows a pairing's events to its end.
fn converse(mut events: Events<PairingEvent>, yes: bool) -> anyhow::Result<()> {
    while let Some(event) = events.next() {
        match event.context("pairing")? {
            PairingEvent::Ticket { ticket } => show_ticket(&ticket)?,
            PairingEvent::Code { code, device, id } => {
                let accepted = ask(&code, &device, &id.to_string(), yes)?;
                events.confirm(accepted)?;
            }
            PairingEvent::Paired { device, id } => {
                println!(
                    "paired with {device} ({id}): each device trusts the other and keeps a link \
                     to it"
                );
                return Ok(());
            }
            PairingEvent::Failed { reason } => bail!("{reason}"),
        }
    }
    bail!("the daemon closed the pairing without an outcome")
}

/// The ticket alone on stdout's first line, then — on a terminal — a QR code of it.
fn show_ticket(ticket: &str) -> anyhow::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{ticket}")?;
    if io::stdout().is_terminal()
        && let Some(picture) = qr(ticket)
    {
        writeln!(out, "{picture}")?;
    }
    out.flush()?;
    eprintln!("waiting for the other device: run `rrt join <ticket>` there");
    Ok(())
}

/// A QR code of `ticket` in half-block characters (two rows a line). Upper case: base32 then
/// fits QR's alphanumeric mode, and `rrt join` reads either case.
fn qr(ticket: &str) -> Option<String> {
    let code = qrcode::QrCode::new(ticket.to_ascii_uppercase()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .quiet_zone(true)
            .build(),
    )
}

/// Shows the code and asks the person whether the other device shows the same.
fn ask(code: &str, device: &str, id: &str, yes: bool) -> anyhow::Result<bool> {
    eprintln!("verification code: {code}");
    eprintln!("the other device: {device} ({id})");
    if yes {
        eprintln!("confirmed (--yes)");
        return Ok(true);
    }
    eprint!("does the other device show the same code? [y/N] ");
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_fits_a_qr_code_a_terminal_can_show() {
        let ticket = "rrt1f534hg2fgi6nreka76o7tizmlvww2l7f6yl665f3ahpchx5zqa2acftior2ha4z2f4xxezlmmf4s4zlymfwxa3dff4aqbrqsaebkah22ljnfuws2ljnfuws2ljnfuws2qcqpdqvrgq";
        let picture = qr(ticket).expect("a QR code");
        let lines: Vec<&str> = picture.lines().collect();
        // Half blocks: a square code, about half as many lines as columns, narrow enough for an
        // 80-column terminal.
        let width = lines[0].chars().count();
        assert!(width <= 80, "{width} columns");
        assert!(lines.len() * 2 >= width && lines.len() * 2 <= width + 2);
        assert!(picture.contains('█') || picture.contains('▀') || picture.contains('▄'));
    }
}
