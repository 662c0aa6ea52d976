//! End to end: meshes too large for everyone to link to everyone — real daemons on one host,
//! above `--swarm-above` members, linked by HyParView's partial views with broadcasts on
//! Plumtree's tree — and the switch between that and the full mesh, both ways.
//!
//! `RRT_SWARM_DAEMONS` sets the size of the large mesh (default 30, as `scripts/test.sh` runs
//! it; the 100: `RRT_SWARM_DAEMONS=100 cargo test --release -p rrt --test swarm`).

mod common;

use common::{Lab, flag_env, wait_until};
use rustix::process::{Pid, Signal, kill_process};

/// Links per daemon a swarm must stay within (HyParView's active view is 5; a few more are the
/// swarm's brief ones: joins, shuffles).
const MAX_LINKS: usize = 10;

fn names(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("s{i:03}")).collect()
}

fn refs(names: &[String]) -> Vec<&str> {
    names.iter().map(String::as_str).collect()
}

fn members(lab: &Lab, name: &str) -> Option<u64> {
    lab.status(name)?["members"].as_u64()
}

fn shape(lab: &Lab, name: &str) -> Option<String> {
    Some(lab.status(name)?["shape"].as_str()?.to_owned())
}

fn wait_for_members(lab: &Lab, names: &[&str], count: usize) {
    for name in names {
        wait_until(&format!("{name} to count {count} members"), || {
            members(lab, name) == Some(count as u64)
        });
    }
}

fn wait_for_copy(lab: &Lab, names: &[&str], text: &str) {
    for name in names {
        wait_until(&format!("{name} to paste {text:?}"), || {
            lab.paste(name).as_deref() == Some(text)
        });
    }
}

#[test]
fn a_large_mesh_is_a_swarm_that_counts_its_members_delivers_copies_and_sees_deaths() {
    let size: usize = flag_env("RRT_SWARM_DAEMONS", 30);
    let mut lab = Lab::new("swarm");
    let all = names(0..size);
    let everyone = refs(&all);
    lab.start_all(&everyone);
    for name in &everyone {
        assert_eq!(shape(&lab, name).as_deref(), Some("swarm"));
        // The links of the start (a full mesh, until there were enough members) linger a while.
        wait_until(&format!("{name} to keep at most {MAX_LINKS} links"), || {
            (1..=MAX_LINKS).contains(&lab.peers(name).len())
        });
    }

    lab.copy(everyone[size / 2], "to every member");
    wait_for_copy(&lab, &everyone, "to every member");

    // kill -9 of a tenth, spread through the mesh: every other daemon hears of each death.
    let step = 10;
    let killed: Vec<&str> = everyone.iter().copied().step_by(step).collect();
    for name in &killed {
        lab.kill(name);
    }
    let alive: Vec<&str> = everyone
        .iter()
        .copied()
        .filter(|name| !killed.contains(name))
        .collect();
    wait_for_members(&lab, &alive, alive.len());

    // A copy while they are gone; restarted, they rejoin, count everyone and catch up.
    lab.copy(alive[0], "while some were dead");
    wait_for_copy(&lab, &alive, "while some were dead");
    for name in &killed {
        lab.start(name);
    }
    wait_for_members(&lab, &everyone, size);
    wait_for_copy(&lab, &killed, "while some were dead");
    lab.copy(killed[0], "from a restarted one");
    wait_for_copy(&lab, &everyone, "from a restarted one");

    // A silent member (SIGSTOP: its process lives, its links go quiet) is counted out by all;
    // woken, it hears of its own death, says otherwise, and is counted again by all.
    let frozen = everyone[1];
    let pid = Pid::from_raw(lab.pid(frozen) as i32).expect("a pid");
    kill_process(pid, Signal::STOP).expect("SIGSTOP");
    let others: Vec<&str> = everyone.iter().copied().filter(|n| *n != frozen).collect();
    wait_for_members(&lab, &others, size - 1);
    kill_process(pid, Signal::CONT).expect("SIGCONT");
    wait_for_members(&lab, &everyone, size);
}

#[test]
fn a_full_mesh_grows_into_a_swarm_and_shrinks_back() {
    let mut lab = Lab::new("switch");
    lab.daemon_args(&["--swarm-above", "4"]);
    let all = names(0..7);
    let everyone = refs(&all);
    let (first, later) = everyone.split_at(4);

    // Four: a full mesh, everyone linked to everyone.
    lab.start_all(first);
    for name in first {
        assert_eq!(shape(&lab, name).as_deref(), Some("full_mesh"));
        assert_eq!(lab.peers(name).len(), 3);
    }
    lab.copy(first[0], "in the full mesh");
    wait_for_copy(&lab, first, "in the full mesh");

    // Seven: a swarm, on every daemon.
    for name in later {
        lab.start(name);
    }
    wait_for_members(&lab, &everyone, 7);
    for name in &everyone {
        wait_until(&format!("{name} to be in a swarm"), || {
            shape(&lab, name).as_deref() == Some("swarm")
        });
    }
    lab.copy(later[0], "in the swarm");
    wait_for_copy(&lab, &everyone, "in the swarm");

    // Three leave cleanly: four again, a full mesh again, every link made again.
    for name in &later[..3] {
        lab.stop(name);
    }
    wait_for_members(&lab, first, 4);
    for name in first {
        wait_until(&format!("{name} to be in a full mesh of 4"), || {
            shape(&lab, name).as_deref() == Some("full_mesh") && lab.peers(name).len() == 3
        });
    }
    lab.copy(first[3], "in the full mesh again");
    wait_for_copy(&lab, first, "in the full mesh again");
}
