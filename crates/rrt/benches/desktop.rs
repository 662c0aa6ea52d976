//! Desktop to desktop: a program copies on one X server, how long until a program on another
//! instance's X server can paste it — through both daemons' X11 adapters and the mesh.
//!
//! Each round, a client of ours takes ownership of the clipboard on X server A (the timer
//! starts just before), daemon a reads it (XFixes event, TARGETS, UTF8_STRING) and shares it,
//! daemon b takes ownership on X server B, and a client there notices the new owner (XFixes),
//! converts and reads the value (the timer stops when it holds the copied text).
//!
//! Run: `cargo bench -p rrt --bench desktop` (`-- --copies N`). Needs Xvfb.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::{Lab, wait_until, xvfb::Xvfb};

fn main() {
    let copies = common::flag("--copies", 200);
    let (x_a, x_b) = (Xvfb::start(), Xvfb::start());
    let mut lab = Lab::new("bench-desktop");
    for (name, x) in [("a", &x_a), ("b", &x_b)] {
        lab.start_with_env(
            name,
            &["--system-clipboard".into(), "x11".into()],
            &[
                ("DISPLAY", x.display()),
                ("RUST_LOG", "info,rrt_clipboard=trace"),
            ],
        );
    }
    wait_until("a and b to meet", || lab.peers("a").len() == 1);
    wait_until("both to follow X", || {
        ["a", "b"]
            .iter()
            .all(|name| lab.log(name).contains("following the X11 clipboard"))
    });
    let reader = x_b.reader();
    let mut samples = Vec::with_capacity(copies);
    for copy in 0..copies {
        let text = format!("desktop sample {copy}");
        let start = Instant::now();
        let _owner = x_a.own(text.clone(), false);
        loop {
            let Some(value) = reader.next_value(Duration::from_secs(10)) else {
                let changes = |name: &str| lab.log(name).matches("clipboard changed").count();
                println!(
                    "{}",
                    lab.log("a")
                        .lines()
                        .filter(|l| !l.contains("clipboard changed"))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                panic!(
                    "copy {copy} never arrived on the other desktop: a saw {} values, b {}; b pastes {:?}",
                    changes("a"),
                    changes("b"),
                    lab.paste("b")
                );
            };
            if value == text {
                samples.push(start.elapsed().as_secs_f64() * 1e3);
                break;
            }
        }
    }
    samples.sort_by(f64::total_cmp);
    let at = |p: f64| samples[((p / 100.0) * (samples.len() - 1) as f64).round() as usize];
    println!("copy in X on a → pasteable in X on b, {copies} copies (ms)\n");
    println!("| path | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    println!(
        "| X server A → daemon a → daemon b → X server B | {:.3} | {:.3} | {:.3} |",
        at(50.0),
        at(99.0),
        samples[samples.len() - 1]
    );
}
