//! What must hold once a run has settled, and what the run did to get there.
//!
//! Clipboard: every node's current value is the copy with the greatest stamp among all copies
//! that reached a disk. That is at least every acknowledged copy (a copy is acknowledged after
//! its save); it can be a later copy whose node crashed between its save and its commit — the
//! value is durable and goes out on the next connect, like a write whose acknowledgement was
//! lost. No node holds a text nobody copied.
//!
//! Documents: every node has the same documents with the same texts, and every acknowledged
//! token is in each exactly once.

use std::collections::{BTreeMap, BTreeSet};

use rrt_sync::{ClipEntry, Stamp};

use super::driver::Driver;

/// What the workload did, for the checks.
#[derive(Debug, Default)]
pub(crate) struct Expected {
    /// Every copy saved to a disk, acknowledged or not.
    pub(crate) saved: Vec<ClipEntry>,
    /// The stamps of the acknowledged copies.
    pub(crate) acknowledged: Vec<Stamp>,
    /// The acknowledged tokens, by document.
    pub(crate) tokens: BTreeMap<String, Vec<String>>,
}

/// Whether every node agrees, and agrees with what was acknowledged.
pub(crate) fn converged(drivers: &[Driver], expected: &Expected) -> Result<(), String> {
    clipboards_converged(drivers, expected)?;
    documents_converged(drivers, expected)?;
    for (node, driver) in drivers.iter().enumerate() {
        let anomalies = driver.anomalies();
        if anomalies.clock_refusals > 0 || anomalies.rejected_updates > 0 {
            return Err(format!("node {node}: {anomalies:?}"));
        }
    }
    Ok(())
}

fn clipboards_converged(drivers: &[Driver], expected: &Expected) -> Result<(), String> {
    let winner = expected.saved.iter().max_by_key(|entry| entry.stamp);
    let newest_acknowledged = expected.acknowledged.iter().max();
    if let (Some(winner), Some(acknowledged)) = (winner, newest_acknowledged)
        && winner.stamp < *acknowledged
    {
        return Err(format!(
            "an acknowledged copy {acknowledged:?} was never saved"
        ));
    }
    let copied: BTreeSet<&str> = expected.saved.iter().map(|entry| &*entry.text).collect();
    for (node, driver) in drivers.iter().enumerate() {
        let clipboard = driver.clipboard().ok_or(format!("node {node} is down"))?;
        if clipboard.current() != winner {
            return Err(format!(
                "node {node}'s clipboard is {:?}, not the newest copy {winner:?}",
                clipboard.current()
            ));
        }
        if let Some(stranger) = clipboard
            .history()
            .iter()
            .find(|entry| !copied.contains(&*entry.text))
        {
            return Err(format!(
                "node {node} holds {stranger:?}, which nobody copied"
            ));
        }
    }
    Ok(())
}

fn documents_converged(drivers: &[Driver], expected: &Expected) -> Result<(), String> {
    let texts = |node: usize| -> Result<BTreeMap<String, String>, String> {
        let documents = drivers[node]
            .documents()
            .ok_or(format!("node {node} is down"))?;
        Ok(documents
            .names()
            .map(|name| {
                let text = documents
                    .document(name)
                    .map(|d| d.text())
                    .unwrap_or_default();
                (name.to_owned(), text)
            })
            .collect())
    };
    let first = texts(0)?;
    for (name, tokens) in &expected.tokens {
        let text = first
            .get(name)
            .ok_or(format!("node 0 lacks document {name}"))?;
        for token in tokens {
            let times = text.matches(token.as_str()).count();
            if times != 1 {
                return Err(format!(
                    "{token} is {times} times in node 0's {name}: {text:?}"
                ));
            }
        }
    }
    for node in 1..drivers.len() {
        let here = texts(node)?;
        if here != first {
            return Err(format!(
                "node {node}'s documents differ from node 0's:\n  {here:?}\n  {first:?}"
            ));
        }
    }
    Ok(())
}
