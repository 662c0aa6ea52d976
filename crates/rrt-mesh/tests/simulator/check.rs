//! What must hold once a run has settled, and what the run did to get there.
//!
//! Clipboard: every node's current value is the copy with the greatest stamp among all copies
//! that reached a disk. That is at least every acknowledged copy (a copy is acknowledged after
//! its save); it can be a later copy whose node crashed between its save and its commit — the
//! value is durable and goes out on the next connect, like a write whose acknowledgement was
//! lost. No node holds a text nobody copied.
//!
//! Documents: every node has the same documents with the same texts (an empty document counts
//! as none: a node whose only edits of a document were refused holds it empty), every
//! acknowledged token is in each exactly once, and no token of a refused edit is anywhere.

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
    /// The tokens of refused edits (not stored, or built on one not stored), by document.
    pub(crate) refused: BTreeMap<String, Vec<String>>,
}

/// Whether every node agrees, and agrees with what was acknowledged.
pub(crate) fn converged(drivers: &[Driver], expected: &Expected) -> Result<(), String> {
    let anomalous: Vec<_> = drivers
        .iter()
        .enumerate()
        .map(|(node, driver)| (node, driver.anomalies()))
        .filter(|(_, anomalies)| anomalies.clock_refusals > 0 || anomalies.rejected_updates > 0)
        .collect();
    let with_anomalies = |reason: String| {
        if anomalous.is_empty() {
            reason
        } else {
            format!("{reason}\nanomalies (node, what): {anomalous:?}")
        }
    };
    clipboards_converged(drivers, expected).map_err(with_anomalies)?;
    documents_converged(drivers, expected).map_err(with_anomalies)?;
    if !anomalous.is_empty() {
        return Err(with_anomalies("converged, but with anomalies".to_owned()));
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
    let texts = drivers
        .iter()
        .enumerate()
        .map(|(node, driver)| {
            let documents = driver.documents().ok_or(format!("node {node} is down"))?;
            Ok(documents
                .names()
                .map(|name| {
                    let text = documents
                        .document(name)
                        .map(|d| d.text())
                        .unwrap_or_default();
                    (name.to_owned(), text)
                })
                .filter(|(_, text)| !text.is_empty())
                .collect::<BTreeMap<String, String>>())
        })
        .collect::<Result<Vec<_>, String>>()?;
    for (name, tokens) in &expected.tokens {
        for token in tokens {
            let wrong: Vec<(usize, usize)> = texts
                .iter()
                .enumerate()
                .map(|(node, texts)| {
                    let text = texts.get(name).map_or("", String::as_str);
                    (node, text.matches(token.as_str()).count())
                })
                .filter(|(_, times)| *times != 1)
                .collect();
            if !wrong.is_empty() {
                return Err(format!(
                    "{token} of {name} is not once in every node; (node, times): {wrong:?}"
                ));
            }
        }
    }
    for (name, tokens) in &expected.refused {
        for token in tokens {
            let leaked: Vec<usize> = texts
                .iter()
                .enumerate()
                .filter(|(_, texts)| {
                    texts
                        .get(name)
                        .is_some_and(|text| text.contains(token.as_str()))
                })
                .map(|(node, _)| node)
                .collect();
            if !leaked.is_empty() {
                return Err(format!(
                    "{token} of {name} was refused, yet nodes {leaked:?} hold it"
                ));
            }
        }
    }
    if let Some(node) = (1..texts.len()).find(|node| texts[*node] != texts[0]) {
        return Err(format!(
            "node {node}'s documents differ from node 0's:\n  {:?}\n  {:?}",
            texts[node], texts[0]
        ));
    }
    Ok(())
}
