//! What an idle daemon costs: CPU time, wake-ups (context switches per thread) and memory over a
//! quiet period, alone, as one of five in a mesh (where heartbeats are the only traffic), and
//! alone following an X11 clipboard (an Xvfb server) — its adapter waits for change events, so
//! it should not wake at all.
//!
//! Run: `cargo bench -p rrt --bench idle` (`-- --seconds N` to change the 30 s window).

#[path = "../tests/common/mod.rs"]
mod common;

use std::{thread, time::Duration};

use common::{Lab, measure::idle_row, xvfb::Xvfb};

fn main() {
    let seconds = common::flag("--seconds", 30);
    println!("an idle daemon over {seconds} s\n");
    println!("| setup | CPU time | wake-ups (all threads) | per thread | RSS |");
    println!("|---|---:|---:|---|---:|");
    for (setup, size, x11) in [
        ("alone", 1, false),
        ("one of 5, mesh", 5, false),
        ("alone, following an X11 clipboard", 1, true),
    ] {
        let mut lab = Lab::new(&format!("idle-{size}-{x11}"));
        let xvfb = x11.then(Xvfb::start);
        match &xvfb {
            Some(x) => lab.start_with_env(
                "n0",
                &["--system-clipboard".into(), "x11".into()],
                &[("DISPLAY", x.display())],
            ),
            None => {
                let names: Vec<String> = (0..size).map(|i| format!("n{i}")).collect();
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                lab.start_all(&refs);
            }
        }
        // Let start-up work (and tokio's blocking-pool threads) settle.
        thread::sleep(Duration::from_secs(12));
        println!("{}", idle_row(setup, lab.pid("n0"), seconds));
    }
}
