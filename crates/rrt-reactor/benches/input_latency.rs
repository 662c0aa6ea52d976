//! Event latency through the reactor: a byte written to a pipe until the decoded key event is in
//! a subscriber's hands, one at a time, against a plain thread doing the same work (blocking read,
//! the same parser, a `std::sync::mpsc` channel) in the same run.
//!
//! Run: `cargo bench -p rrt-reactor --bench input_latency` (`-- --samples N` to change the count).

use std::{
    os::fd::OwnedFd,
    sync::mpsc,
    thread,
    time::{Duration, Instant},
};

use rrt_reactor::{
    ReactorEvent, Rrt, Subscription,
    terminal::{InputParser, TerminalInput, terminput::Event},
};

const WARMUP: usize = 1_000;
const DEFAULT_SAMPLES: usize = 20_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let samples = sample_count();
    let baseline = plain_thread(samples)?;
    let rows = [
        ("plain thread → std mpsc (baseline)", baseline.clone()),
        ("reactor → blocking_recv", reactor_blocking(samples)?),
        ("reactor → tokio current_thread", reactor_tokio(samples)?),
    ];
    println!("pipe write → key event received, {samples} samples each (µs)\n");
    println!("| path | p50 | p99 | p99.9 | mean | p50 ratio | p99 ratio |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (name, latencies) in rows {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:.2}× | {:.2}× |",
            micros(latencies.percentile(50.0)),
            micros(latencies.percentile(99.0)),
            micros(latencies.percentile(99.9)),
            micros(latencies.mean()),
            ratio(latencies.percentile(50.0), baseline.percentile(50.0)),
            ratio(latencies.percentile(99.0), baseline.percentile(99.0)),
        );
    }
    Ok(())
}

fn sample_count() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|arg| arg == "--samples")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_SAMPLES)
}

#[derive(Clone)]
struct Latencies(Vec<Duration>);

impl Latencies {
    fn sorted(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        Self(samples)
    }

    fn percentile(&self, p: f64) -> Duration {
        let rank = ((p / 100.0) * (self.0.len() - 1) as f64).round() as usize;
        self.0[rank.min(self.0.len() - 1)]
    }

    fn mean(&self) -> Duration {
        self.0.iter().sum::<Duration>() / self.0.len() as u32
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() / b.as_secs_f64()
}

fn press(write_end: &OwnedFd) -> Result<(), rustix::io::Errno> {
    rustix::io::write(write_end, b"x").map(drop)
}

/// Times `samples` key presses after a warm-up; `receive` waits for the resulting key event.
fn measure(
    samples: usize,
    write_end: &OwnedFd,
    mut receive: impl FnMut() -> Result<(), String>,
) -> Result<Latencies, Box<dyn std::error::Error>> {
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..WARMUP + samples {
        let start = Instant::now();
        press(write_end)?;
        receive()?;
        if i >= WARMUP {
            latencies.push(start.elapsed());
        }
    }
    Ok(Latencies::sorted(latencies))
}

fn plain_thread(samples: usize) -> Result<Latencies, Box<dyn std::error::Error>> {
    let (read_end, write_end) = rustix::pipe::pipe()?;
    let (sender, receiver) = mpsc::channel();
    let reader = thread::spawn(move || {
        let mut parser = InputParser::default();
        let mut buffer = [0; 8192];
        while let Ok(read @ 1..) = rustix::io::read(&read_end, &mut buffer) {
            parser.feed(&buffer[..read]);
            while let Some(event) = parser.next_event() {
                if sender.send(event).is_err() {
                    return;
                }
            }
        }
    });
    let latencies = measure(samples, &write_end, || {
        receiver.recv().map(drop).map_err(|e| e.to_string())
    })?;
    drop(write_end);
    reader.join().map_err(|_| "the reader thread panicked")?;
    Ok(latencies)
}

fn reactor_on(read_end: OwnedFd) -> Rrt<TerminalInput> {
    Rrt::new(move |registry: &mio::Registry| TerminalInput::new(registry, read_end.try_clone()?))
}

fn key_event(event: ReactorEvent<Event>) -> Result<bool, String> {
    match event {
        ReactorEvent::Worker(Event::Key(_)) => Ok(true),
        ReactorEvent::Shutdown(reason) => Err(format!("reactor shut down: {reason:?}")),
        _ => Ok(false),
    }
}

fn reactor_blocking(samples: usize) -> Result<Latencies, Box<dyn std::error::Error>> {
    let (read_end, write_end) = rustix::pipe::pipe()?;
    let reactor = reactor_on(read_end);
    let mut events = reactor.subscribe();
    measure(samples, &write_end, || {
        while !key_event(events.blocking_recv().map_err(|e| e.to_string())?)? {}
        Ok(())
    })
}

fn reactor_tokio(samples: usize) -> Result<Latencies, Box<dyn std::error::Error>> {
    let (read_end, write_end) = rustix::pipe::pipe()?;
    let reactor = reactor_on(read_end);
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let mut events: Subscription<Event> = reactor.subscribe();
    measure(samples, &write_end, || {
        runtime.block_on(async {
            while !key_event(events.recv().await.map_err(|e| e.to_string())?)? {}
            Ok(())
        })
    })
}
