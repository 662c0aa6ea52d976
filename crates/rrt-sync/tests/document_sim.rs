//! Deterministic simulation: replicas of one document edit concurrently over an in-memory network
//! that reorders, duplicates and drops messages and cuts one replica off for a while. Live
//! updates are broadcast as they are made; anti-entropy (send your state vector, get back what
//! you lack) repairs the rest. After the network heals, every replica must be equal and no edit
//! may be missing — for every one of many seeds.

use rrt_sync::Document;

const REPLICAS: usize = 4;
const STEPS: usize = 400;
const SEEDS: u64 = 200;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn percent(&mut self, p: u64) -> bool {
        self.next() % 100 < p
    }
}

#[derive(Clone)]
enum Packet {
    Update(Vec<u8>),
    Version(Vec<u8>),
    Diff(Vec<u8>),
}

struct Network {
    in_flight: Vec<(usize, usize, Packet)>,
    drop_percent: u64,
    duplicate_percent: u64,
    cut: [bool; REPLICAS],
}

impl Network {
    fn send(&mut self, rng: &mut Rng, from: usize, to: usize, packet: Packet) {
        if self.cut[from] || self.cut[to] || rng.percent(self.drop_percent) {
            return;
        }
        if rng.percent(self.duplicate_percent) {
            self.in_flight.push((from, to, packet.clone()));
        }
        self.in_flight.push((from, to, packet));
    }

    /// Any message in flight, not the oldest: reordering.
    fn take(&mut self, rng: &mut Rng) -> Option<(usize, usize, Packet)> {
        if self.in_flight.is_empty() {
            return None;
        }
        let index = rng.below(self.in_flight.len());
        Some(self.in_flight.swap_remove(index))
    }
}

fn deliver(
    replicas: &[Document],
    network: &mut Network,
    rng: &mut Rng,
    (from, to, packet): (usize, usize, Packet),
) {
    match packet {
        Packet::Update(update) | Packet::Diff(update) => {
            replicas[to].apply(&update).expect("a valid update applies");
        }
        Packet::Version(version) => {
            let diff = replicas[to].diff(&version).expect("a valid version");
            network.send(rng, to, from, Packet::Diff(diff));
        }
    }
}

fn simulate(seed: u64) {
    let mut rng = Rng::new(seed);
    let replicas: Vec<Document> = (1..=REPLICAS as u64).map(Document::new).collect();
    let mut network = Network {
        in_flight: Vec::new(),
        drop_percent: 10,
        duplicate_percent: 10,
        cut: [false; REPLICAS],
    };
    let victim = (seed as usize) % REPLICAS;
    let (mut tokens, mut keys) = (Vec::new(), Vec::new());
    for step in 0..STEPS {
        network.cut[victim] = (100..250).contains(&step);
        let writer = rng.below(REPLICAS);
        let update = match rng.below(10) {
            0..=4 => {
                let token = format!("<{writer}.{step}>");
                // Between tokens, never inside one, so every token stays findable.
                let text = replicas[writer].text();
                let boundaries: Vec<usize> = std::iter::once(0)
                    .chain(text.match_indices('>').map(|(at, _)| at + 1))
                    .collect();
                let at = boundaries[rng.below(boundaries.len())];
                tokens.push(token.clone());
                Some(replicas[writer].insert(at, &token))
            }
            5 => {
                let key = format!("k{writer}.{step}");
                keys.push(key.clone());
                Some(replicas[writer].set(&key, &step.to_string()))
            }
            6 => {
                let peer = (writer + 1 + rng.below(REPLICAS - 1)) % REPLICAS;
                let version = replicas[writer].state_vector();
                network.send(&mut rng, writer, peer, Packet::Version(version));
                None
            }
            _ => {
                for _ in 0..3 {
                    if let Some(message) = network.take(&mut rng) {
                        deliver(&replicas, &mut network, &mut rng, message);
                    }
                }
                None
            }
        };
        if let Some(update) = update {
            for peer in (0..REPLICAS).filter(|peer| *peer != writer) {
                network.send(&mut rng, writer, peer, Packet::Update(update.clone()));
            }
        }
    }

    // The network heals and stops losing messages; anti-entropy rounds until everyone agrees.
    network.cut = [false; REPLICAS];
    network.drop_percent = 0;
    for _round in 0..5 {
        while let Some(message) = network.take(&mut rng) {
            deliver(&replicas, &mut network, &mut rng, message);
        }
        for (from, replica) in replicas.iter().enumerate() {
            for to in (0..REPLICAS).filter(|to| *to != from) {
                network.send(&mut rng, from, to, Packet::Version(replica.state_vector()));
            }
        }
        while let Some(message) = network.take(&mut rng) {
            deliver(&replicas, &mut network, &mut rng, message);
        }
    }

    let text = replicas[0].text();
    let entries = replicas[0].entries();
    for (index, replica) in replicas.iter().enumerate() {
        assert_eq!(replica.text(), text, "seed {seed}: replica {index} differs");
        assert_eq!(
            replica.entries(),
            entries,
            "seed {seed}: replica {index}'s map differs"
        );
    }
    for token in &tokens {
        assert!(text.contains(token.as_str()), "seed {seed}: lost {token}");
    }
    for key in &keys {
        assert!(entries.contains_key(key), "seed {seed}: lost {key}");
    }
}

#[test]
fn replicas_converge_under_reordering_duplication_loss_and_a_partition() {
    for seed in 0..SEEDS {
        simulate(seed);
    }
}
