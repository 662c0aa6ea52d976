//! Who may use a TLS link (or a wide-area one, whose key QUIC proved), as a sans-IO machine: the
//! decisions on a new link's key (trusted, must prove the join secret, refused and told why), the
//! join proof's check, and the pin of a key that proved it. The worker reads the trust store and
//! the session's keying material and hands them in; it carries out [`Admission::poll_output`]: sends, closes, admissions, and
//! pins, which it writes to disk off the reactor thread.
//!
//! ```text
//!  TLS link opened ─▶ link_opened ─▶ [handshaking] ──handle_established(key, trust verdict)──┐
//!     trusted key ─────────────────────────────────────────────────────────▶ Admit ◀────────┤
//!     unknown key, we hold a secret ─▶ [awaiting join] ──valid proof──▶ Pin + Admit          │
//!                                                      └─anything else─▶ Send(refused) + Close
//!     unknown key, no secret / no certificate / store unreadable ───────────▶ (refused +) Close
//!  handshake timeout passed before admission ────────────────────────────────▶ Close
//! ```
//!
//! A device with the secret sends its own proof first, whatever it thinks of the peer, so the
//! peer can decide too. Trust is by key: a name is a label and decides nothing.

use std::{
    collections::{HashMap, VecDeque},
    io,
    time::{Duration, Instant},
};

use super::api::TlsConfig;
use crate::{
    Message,
    identity::{Device, DeviceId, ForeignCertificate},
    link_message::LinkMessage,
    proto::join::{join_proof, verify_join},
    proto::membership::{DownReason, LinkId},
    trust::Verdict,
};

/// What the TLS handshake established about a peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct PeerKey {
    /// The id of the certificate it showed.
    pub(super) id: DeviceId,
    /// The session's keying material for join proofs; `None` if it could not be exported.
    pub(super) exporter: Option<[u8; 32]>,
}

/// A TLS handshake just over, with what the trust store says of the peer's key.
#[derive(Debug)]
pub(super) enum Established {
    /// The peer showed no certificate.
    NoCertificate,
    /// The peer's certificate carries no Ed25519 key: an older rrt, or not rrt.
    ForeignCertificate,
    /// The peer's key, and the trust store's verdict on it.
    Key {
        /// The key.
        key: PeerKey,
        /// The verdict, or why the store could not be read.
        trust: io::Result<Verdict>,
    },
}

/// What the worker must do for the admission.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Output {
    /// Send `message` on `link`.
    Send {
        /// The link.
        link: LinkId,
        /// The message (a join proof, or a refusal).
        message: LinkMessage,
    },
    /// Its peer is admitted: the link meets the membership now.
    Admit {
        /// The link.
        link: LinkId,
    },
    /// Close `link` (after writing what is queued).
    Close {
        /// The link.
        link: LinkId,
        /// Why.
        reason: DownReason,
    },
    /// Trust `id` from now on under the label `name` (write it to the trust store).
    Pin {
        /// The key that proved the join secret.
        id: DeviceId,
        /// The name it proved it under.
        name: String,
    },
}

/// How a message on a link was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Taken {
    /// Not an admission matter: for the membership.
    Pass,
    /// Handled here (a join, a refusal, anything from a peer not admitted).
    Consumed,
}

/// This device's side of admissions.
#[derive(Clone)]
pub(super) struct Settings {
    /// This device's key.
    pub(super) ours: DeviceId,
    /// The name this device proves the secret under.
    pub(super) device: String,
    /// The mesh's join secret, if this device holds one.
    pub(super) secret: Option<Vec<u8>>,
    /// How long a peer has to prove itself (TLS, preambles and `join` together).
    pub(super) timeout: Duration,
}

impl Settings {
    /// This device's settings from its TLS configuration; peers get `timeout` to prove
    /// themselves.
    pub(super) fn new(config: &TlsConfig, timeout: Duration) -> Self {
        Self {
            ours: config.identity.id(),
            device: config.device.clone(),
            secret: config.secret.clone(),
            timeout,
        }
    }
}

#[derive(Debug)]
enum Gate {
    /// TLS under way: nothing is decided, nothing is read.
    Handshaking { admit_by: Instant },
    /// A key nobody trusts yet: the first frame must prove the join secret.
    AwaitingJoin { key: PeerKey, admit_by: Instant },
    /// In: the device behind the link.
    Admitted { key: PeerKey, device: Device },
}

/// The admission of every TLS link of one device. Links it never heard of (Unix, plain TCP)
/// are open.
pub(super) struct Admission {
    settings: Option<Settings>,
    links: HashMap<LinkId, Gate>,
    outputs: VecDeque<Output>,
}

impl Admission {
    /// Admissions under `settings`; `None` when this device has no TLS (no link will need one).
    pub(super) fn new(settings: Option<Settings>) -> Self {
        Self {
            settings,
            links: HashMap::new(),
            outputs: VecDeque::new(),
        }
    }

    /// A TLS link opened at `now`: its peer has until the handshake timeout to prove itself.
    pub(super) fn link_opened(&mut self, link: LinkId, now: Instant) {
        let timeout = self.settings.as_ref().map_or(Duration::ZERO, |s| s.timeout);
        let admit_by = now + timeout;
        self.links.insert(link, Gate::Handshaking { admit_by });
    }

    /// Whether `link` waits for its TLS handshake to end ([`Admission::handle_established`]).
    pub(super) fn is_handshaking(&self, link: LinkId) -> bool {
        matches!(self.links.get(&link), Some(Gate::Handshaking { .. }))
    }

    /// The TLS handshake of `link` is over: decide what its peer may do.
    pub(super) fn handle_established(&mut self, link: LinkId, established: Established) {
        let Some(Gate::Handshaking { admit_by }) = self.links.get(&link) else {
            return;
        };
        let admit_by = *admit_by;
        let Some(settings) = self.settings.clone() else {
            return self.close(link, "no TLS settings".to_owned());
        };
        let (key, trust) = match established {
            Established::NoCertificate => {
                return self.close(link, "the peer showed no certificate".to_owned());
            }
            Established::ForeignCertificate => {
                tracing::warn!(
                    "refused a device whose certificate carries no Ed25519 key: {ForeignCertificate}"
                );
                return self.close(link, ForeignCertificate.to_string());
            }
            Established::Key { key, trust } => (key, trust),
        };
        if let (Some(secret), Some(exporter)) = (&settings.secret, key.exporter) {
            let proof = join_proof(secret, &exporter, settings.ours, &settings.device);
            self.outputs.push_back(Output::Send {
                link,
                message: LinkMessage::Join {
                    device: settings.device.clone(),
                    proof,
                },
            });
        }
        let id = key.id;
        match trust {
            Ok(Verdict::Trusted { name }) => self.admit(link, key, name),
            Ok(Verdict::Unknown) if settings.secret.is_some() => {
                self.links
                    .insert(link, Gate::AwaitingJoin { key, admit_by });
            }
            Ok(Verdict::Unknown) => {
                tracing::warn!(
                    %id,
                    "refused an untrusted device; `rrt trust add {id}` lets it in"
                );
                let ours = settings.ours;
                self.refuse(
                    link,
                    format!("device {ours} does not trust key {id} and holds no join secret; `rrt trust add {id}` there lets it in"),
                    format!("untrusted device {id}"),
                );
            }
            Err(error) => {
                tracing::error!(%error, "could not read the trust store");
                self.close(link, "trust store unreadable".to_owned());
            }
        }
    }

    /// A message arrived on `link`: a join or a refusal is taken here, and so is anything from
    /// a peer not admitted; the rest passes to the membership.
    pub(super) fn handle_message(&mut self, link: LinkId, message: &Message) -> Taken {
        match self.links.get(&link) {
            Some(Gate::Handshaking { .. }) => {
                self.close(link, "a frame before TLS".to_owned());
                Taken::Consumed
            }
            Some(Gate::AwaitingJoin { key, .. }) => {
                let key = *key;
                self.handle_first_frame(link, key, message);
                Taken::Consumed
            }
            Some(Gate::Admitted { .. }) | None => match message {
                Message::Link(LinkMessage::Join { device, proof }) => {
                    // A trusted peer's proof decides nothing; it only tells its name.
                    self.label(link, device, proof);
                    Taken::Consumed
                }
                Message::Link(LinkMessage::Refused { reason }) => {
                    // We let the peer in, but it does not let us in.
                    self.refused_by_peer(link, None, reason);
                    Taken::Consumed
                }
                _ => Taken::Pass,
            },
        }
    }

    /// `link` is gone; `by_peer` when its peer closed it.
    pub(super) fn link_closed(&mut self, link: LinkId, by_peer: bool) {
        if let Some(Gate::AwaitingJoin { key, .. }) = self.links.remove(&link)
            && by_peer
        {
            // A peer that refuses us without saying so (an older version).
            let id = key.id;
            tracing::warn!(%id, "a device closed the connection before proving the join secret: it may not trust this device, or hold another secret");
        }
    }

    /// The device behind an admitted TLS link.
    pub(super) fn device(&self, link: LinkId) -> Option<&Device> {
        match self.links.get(&link) {
            Some(Gate::Admitted { device, .. }) => Some(device),
            _ => None,
        }
    }

    /// When the earliest peer not admitted runs out of time. The membership's own timeout
    /// starts only at admission, so without this a peer that completes the preambles and then
    /// says nothing would hold its connection forever.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        self.links
            .values()
            .filter_map(|gate| match gate {
                Gate::Handshaking { admit_by } | Gate::AwaitingJoin { admit_by, .. } => {
                    Some(*admit_by)
                }
                Gate::Admitted { .. } => None,
            })
            .min()
    }

    /// Closes every link whose peer did not prove itself by `now`.
    pub(super) fn handle_timeout(&mut self, now: Instant) {
        let late: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, gate)| match gate {
                Gate::Handshaking { admit_by } | Gate::AwaitingJoin { admit_by, .. } => {
                    *admit_by <= now
                }
                Gate::Admitted { .. } => false,
            })
            .map(|(link, _)| *link)
            .collect();
        for link in late {
            tracing::warn!("closing a TLS connection whose peer did not prove itself in time");
            self.close(link, "not admitted within the handshake timeout".to_owned());
        }
    }

    /// The next thing to do.
    pub(super) fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The first frame from an unknown key: a valid join proof pins the key, with the name it
    /// goes by as a label, and lets it in; anything else closes the link. Names decide nothing:
    /// another key under a known name is another device.
    fn handle_first_frame(&mut self, link: LinkId, key: PeerKey, message: &Message) {
        let Some(settings) = self.settings.clone() else {
            return self.close(link, "no TLS settings".to_owned());
        };
        let (ours, id) = (settings.ours, key.id);
        match message {
            Message::Link(LinkMessage::Join { device, proof })
                if proves(&settings, key, device, proof) =>
            {
                tracing::info!(%device, %id, "pinned a device that proved the join secret");
                self.outputs.push_back(Output::Pin {
                    id,
                    name: device.clone(),
                });
                self.admit(link, key, Some(device.clone()));
            }
            Message::Link(LinkMessage::Join { device, .. }) => {
                tracing::warn!(%device, %id, "refused a device: wrong join secret");
                self.refuse(
                    link,
                    format!("device {ours} refused key {id}: its join proof does not match this mesh's secret"),
                    "wrong join secret".to_owned(),
                );
            }
            Message::Link(LinkMessage::Refused { reason }) => {
                self.refused_by_peer(link, Some(id), reason)
            }
            _ => {
                tracing::warn!(%id, "refused an untrusted device that did not prove the join secret");
                self.refuse(
                    link,
                    format!("device {ours} does not trust key {id}, which did not prove the join secret; the same `--secret-file` on both, or `rrt trust add {id}` there, lets it in"),
                    format!("untrusted device {id}"),
                );
            }
        }
    }

    /// A trusted peer's `join`: its proof, when it holds, names the device.
    fn label(&mut self, link: LinkId, name: &str, proof: &str) {
        let Some(settings) = &self.settings else {
            return;
        };
        if let Some(Gate::Admitted { key, device }) = self.links.get_mut(&link)
            && proves(settings, *key, name, proof)
        {
            device.name = Some(name.to_owned());
        }
    }

    fn admit(&mut self, link: LinkId, key: PeerKey, name: Option<String>) {
        let device = Device { id: key.id, name };
        self.links.insert(link, Gate::Admitted { key, device });
        self.outputs.push_back(Output::Admit { link });
    }

    /// Tells the peer why it is not admitted (best effort: the worker writes what is queued
    /// before it closes), then closes the link.
    fn refuse(&mut self, link: LinkId, why: String, detail: String) {
        self.outputs.push_back(Output::Send {
            link,
            message: LinkMessage::Refused { reason: why },
        });
        self.close(link, detail);
    }

    /// The peer says it will not admit us, and why: both sides of a refusal say it.
    fn refused_by_peer(&mut self, link: LinkId, id: Option<DeviceId>, reason: &str) {
        let id = id.map(|key| key.to_string());
        tracing::warn!(id, reason, "the peer refused this device");
        self.close(link, format!("refused by the peer: {reason}"));
    }

    fn close(&mut self, link: LinkId, detail: String) {
        self.links.remove(&link);
        self.outputs.push_back(Output::Close {
            link,
            reason: DownReason::Error(detail),
        });
    }
}

/// Whether `proof` proves that the holder of `key`, named `device`, knows this mesh's secret.
fn proves(settings: &Settings, key: PeerKey, device: &str, proof: &str) -> bool {
    match (&settings.secret, key.exporter) {
        (Some(secret), Some(exporter)) => verify_join(secret, &exporter, key.id, device, proof),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"the mesh's secret";
    const EXPORTER: [u8; 32] = [7; 32];

    fn settings(secret: Option<&[u8]>) -> Settings {
        Settings {
            ours: DeviceId::from_bytes([1; 32]),
            device: "laptop".to_owned(),
            secret: secret.map(<[u8]>::to_vec),
            timeout: Duration::from_secs(5),
        }
    }

    fn peer() -> PeerKey {
        PeerKey {
            id: DeviceId::from_bytes([2; 32]),
            exporter: Some(EXPORTER),
        }
    }

    fn drain(admission: &mut Admission) -> Vec<Output> {
        std::iter::from_fn(|| admission.poll_output()).collect()
    }

    fn established(admission: &mut Admission, trust: Verdict, now: Instant) -> Vec<Output> {
        admission.link_opened(1, now);
        let trust = Ok(trust);
        admission.handle_established(1, Established::Key { key: peer(), trust });
        drain(admission)
    }

    fn is_close(output: &Output) -> bool {
        matches!(output, Output::Close { link: 1, .. })
    }

    #[test]
    fn a_trusted_key_is_admitted_with_its_name_and_gets_our_proof_first() {
        let mut admission = Admission::new(Some(settings(Some(SECRET))));
        let trusted = Verdict::Trusted {
            name: Some("desk".to_owned()),
        };
        let outputs = established(&mut admission, trusted, Instant::now());
        let [
            Output::Send {
                message: LinkMessage::Join { device, proof },
                ..
            },
            Output::Admit { link: 1 },
        ] = outputs.as_slice()
        else {
            panic!("expected our proof, then the admission: {outputs:?}");
        };
        let ours = settings(None).ours;
        assert!(verify_join(SECRET, &EXPORTER, ours, device, proof));
        assert_eq!(
            admission.device(1).and_then(|d| d.name.as_deref()),
            Some("desk")
        );
        assert_eq!(admission.poll_timeout(), None, "admitted: no deadline");
    }

    #[test]
    fn an_unknown_key_without_a_secret_is_refused_with_a_reason() {
        let mut admission = Admission::new(Some(settings(None)));
        let outputs = established(&mut admission, Verdict::Unknown, Instant::now());
        assert!(matches!(
            outputs.as_slice(),
            [Output::Send { message: LinkMessage::Refused { reason }, .. }, close]
                if reason.contains("rrt trust add") && is_close(close)
        ));
    }

    #[test]
    fn an_unknown_key_that_proves_the_secret_is_pinned_and_admitted() {
        let mut admission = Admission::new(Some(settings(Some(SECRET))));
        let outputs = established(&mut admission, Verdict::Unknown, Instant::now());
        assert!(
            matches!(outputs.as_slice(), [Output::Send { .. }]),
            "only our proof"
        );
        let proof = join_proof(SECRET, &EXPORTER, peer().id, "desk");
        let join = LinkMessage::Join {
            device: "desk".to_owned(),
            proof,
        };
        assert_eq!(
            admission.handle_message(1, &join.clone().into()),
            Taken::Consumed
        );
        assert_eq!(
            drain(&mut admission),
            [
                Output::Pin {
                    id: peer().id,
                    name: "desk".to_owned()
                },
                Output::Admit { link: 1 }
            ]
        );
        let hello = LinkMessage::Goodbye {
            instance_id: uuid::Uuid::nil(),
        };
        assert_eq!(
            admission.handle_message(1, &hello.clone().into()),
            Taken::Pass
        );
    }

    #[test]
    fn a_wrong_proof_or_any_other_first_frame_is_refused() {
        let wrong = LinkMessage::Join {
            device: "desk".to_owned(),
            proof: join_proof(b"another secret", &EXPORTER, peer().id, "desk"),
        };
        let other = LinkMessage::Ping { timestamp: 1 };
        for first in [wrong, other] {
            let mut admission = Admission::new(Some(settings(Some(SECRET))));
            established(&mut admission, Verdict::Unknown, Instant::now());
            assert_eq!(
                admission.handle_message(1, &first.clone().into()),
                Taken::Consumed
            );
            let outputs = drain(&mut admission);
            assert!(
                matches!(outputs.as_slice(), [Output::Send { message: LinkMessage::Refused { .. }, .. }, close] if is_close(close)),
                "{outputs:?}"
            );
            assert!(!outputs.iter().any(|o| matches!(o, Output::Pin { .. })));
        }
    }

    #[test]
    fn no_certificate_a_foreign_one_or_an_unreadable_store_closes_without_admitting() {
        let mut admission = Admission::new(Some(settings(Some(SECRET))));
        for established in [Established::NoCertificate, Established::ForeignCertificate] {
            admission.link_opened(1, Instant::now());
            admission.handle_established(1, established);
            // Not even a join proof goes to a peer whose key is not known.
            assert!(matches!(drain(&mut admission).as_slice(), [close] if is_close(close)));
        }
        admission.link_opened(1, Instant::now());
        let trust = Err(io::Error::other("unreadable"));
        admission.handle_established(1, Established::Key { key: peer(), trust });
        let outputs = drain(&mut admission);
        assert!(matches!(outputs.last(), Some(close) if is_close(close)));
        assert!(!outputs.iter().any(|o| matches!(o, Output::Admit { .. })));
    }

    #[test]
    fn a_peer_that_does_not_prove_itself_in_time_is_closed() {
        let start = Instant::now();
        let mut admission = Admission::new(Some(settings(Some(SECRET))));
        established(&mut admission, Verdict::Unknown, start);
        let deadline = start + Duration::from_secs(5);
        assert_eq!(admission.poll_timeout(), Some(deadline));
        admission.handle_timeout(deadline - Duration::from_millis(1));
        assert!(drain(&mut admission).is_empty());
        admission.handle_timeout(deadline);
        assert!(matches!(drain(&mut admission).as_slice(), [close] if is_close(close)));
        assert_eq!(admission.poll_timeout(), None);
    }

    #[test]
    fn a_trusted_peers_proof_names_it_and_a_refusal_closes_any_link() {
        let mut admission = Admission::new(Some(settings(Some(SECRET))));
        established(
            &mut admission,
            Verdict::Trusted { name: None },
            Instant::now(),
        );
        let join = LinkMessage::Join {
            device: "desk".to_owned(),
            proof: join_proof(SECRET, &EXPORTER, peer().id, "desk"),
        };
        assert_eq!(
            admission.handle_message(1, &join.clone().into()),
            Taken::Consumed
        );
        assert_eq!(
            admission.device(1).and_then(|d| d.name.as_deref()),
            Some("desk")
        );
        // A Unix link is unknown here: open, but a refusal still closes it.
        let refused = LinkMessage::Refused {
            reason: "no".to_owned(),
        };
        assert_eq!(
            admission.handle_message(9, &refused.clone().into()),
            Taken::Consumed
        );
        assert!(matches!(
            drain(&mut admission).as_slice(),
            [Output::Close { link: 9, .. }]
        ));
    }
}
