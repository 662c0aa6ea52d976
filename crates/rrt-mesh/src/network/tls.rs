//! TLS 1.3 in the reactor thread: rustls' connection state machine over a non-blocking
//! `TcpStream` — no second thread, no async runtime.
//!
//! Certificates are self-signed, so the handshake verifies only that the peer holds the key of
//! the certificate it shows; *who* may join is decided right after, from the certificate's
//! id and the trust store (or a join secret proven over this very session).

use std::{
    io::{self, Read, Write},
    sync::Arc,
};

use mio::net::TcpStream;
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, DistinguishedName,
    ServerConfig, ServerConnection, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::{WebPkiSupportedAlgorithms, ring::default_provider},
    pki_types::{CertificateDer, ServerName, UnixTime},
    server::danger::{ClientCertVerified, ClientCertVerifier},
    version::TLS13,
};

use super::{
    admission::{Established, PeerKey},
    api::TlsConfig,
    pins::Pins,
};
use crate::{
    identity::{DeviceId, ForeignCertificate, Identity},
    proto::join::EXPORTER_LABEL,
    trust::TrustStore,
};

/// The name a dialer asks for; certificates are not checked against it.
const SERVER_NAME: &str = "rrt.device";

/// Client and server configurations for this device.
pub(super) struct TlsSetup {
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
}

impl TlsSetup {
    pub(super) fn new(identity: &Identity) -> Result<Self, rustls::Error> {
        let provider = Arc::new(default_provider());
        let verifier = Arc::new(AnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(verifier.clone())
            .with_client_auth_cert(vec![identity.certificate()], identity.key())?;
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![identity.certificate()], identity.key())?;
        Ok(Self {
            client: Arc::new(client),
            server: Arc::new(server),
        })
    }
}

/// TLS for the worker: the rustls configurations, the store its verdicts come from, and the
/// writer of the keys it pins.
pub(super) struct TlsContext {
    pub(super) setup: TlsSetup,
    pub(super) trust: TrustStore,
    pub(super) pins: Pins,
}

impl TlsContext {
    pub(super) fn new(config: &TlsConfig) -> io::Result<Self> {
        Ok(Self {
            setup: TlsSetup::new(&config.identity).map_err(io::Error::other)?,
            trust: config.trust.clone(),
            pins: Pins::new(config.trust.clone()),
        })
    }
}

/// Accepts any certificate whose holder proves its key; authorization comes after.
#[derive(Debug)]
struct AnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ClientCertVerifier for AnyCertificate {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// A TCP stream with TLS on it. Reads and writes plaintext; moves ciphertext as the socket
/// allows, never blocking.
pub(super) struct TlsStream {
    pub(super) tcp: TcpStream,
    tls: Connection,
}

impl TlsStream {
    pub(super) fn client(tcp: TcpStream, setup: &TlsSetup) -> io::Result<Self> {
        let name = ServerName::try_from(SERVER_NAME).map_err(io::Error::other)?;
        let tls =
            ClientConnection::new(Arc::clone(&setup.client), name).map_err(io::Error::other)?;
        Ok(Self {
            tcp,
            tls: tls.into(),
        })
    }

    pub(super) fn server(tcp: TcpStream, setup: &TlsSetup) -> io::Result<Self> {
        let tls = ServerConnection::new(Arc::clone(&setup.server)).map_err(io::Error::other)?;
        Ok(Self {
            tcp,
            tls: tls.into(),
        })
    }

    /// Once the TLS handshake is over, what it established about the peer, with `trust`'s
    /// verdict on its key (read from disk: the store may have changed since the last link).
    pub(super) fn established(&self, trust: &TrustStore) -> Option<Established> {
        if self.tls.is_handshaking() {
            return None;
        }
        Some(match self.peer_id() {
            None => Established::NoCertificate,
            Some(Err(ForeignCertificate)) => Established::ForeignCertificate,
            Some(Ok(id)) => Established::Key {
                key: PeerKey {
                    id,
                    exporter: self.exporter(),
                },
                trust: trust.judge(id),
            },
        })
    }

    fn peer_id(&self) -> Option<Result<DeviceId, ForeignCertificate>> {
        let certificates = self.tls.peer_certificates()?;
        certificates
            .first()
            .map(|certificate| DeviceId::of_certificate(certificate))
    }

    /// The session's keying material for the join proof (RFC 8446 § 7.5, no context).
    fn exporter(&self) -> Option<[u8; 32]> {
        self.tls
            .export_keying_material([0u8; 32], EXPORTER_LABEL, None)
            .ok()
    }

    /// Whether encrypted bytes wait for the socket.
    pub(super) fn wants_write(&self) -> bool {
        self.tls.wants_write()
    }

    /// Writes pending ciphertext until done or the socket would block.
    pub(super) fn flush_tls(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut self.tcp) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    fn flush_unless_blocked(&mut self) -> io::Result<()> {
        match self.flush_tls() {
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}

impl Read for TlsStream {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.tls.reader().read(buffer) {
                Ok(read) => return Ok(read),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {}
                Err(error) => return Err(error),
            }
            if self.tls.read_tls(&mut self.tcp)? == 0 {
                return Ok(0);
            }
            if let Err(error) = self.tls.process_new_packets() {
                // Tell the peer why (the alert), then fail this link.
                let _ = self.flush_unless_blocked();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            self.flush_unless_blocked()?;
        }
    }
}

impl Write for TlsStream {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.flush_unless_blocked()?;
        let written = self.tls.writer().write(bytes)?;
        self.flush_unless_blocked()?;
        if written == 0 && !bytes.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_unless_blocked()
    }
}
