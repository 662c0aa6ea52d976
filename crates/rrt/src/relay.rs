//! `rrt relay`: a relay server (iroh-relay's), so anyone can self-host what devices on different
//! networks meet through. With a certificate it serves HTTPS on `--listen` and QUIC address
//! discovery on UDP `--quic-port` of the same address (hosts behind NAT learn their public
//! address there, which hole punching needs); without one it serves plain HTTP, for a lab —
//! relayed traffic is still end-to-end encrypted between devices, but the relay's clients cannot
//! tell it from an impostor, and it offers no address discovery.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use anyhow::Context as _;
use clap::Args;
use iroh_relay::server::{CertConfig, QuicConfig, RelayConfig, Server, ServerConfig, TlsConfig};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};

#[derive(Debug, Args)]
pub(crate) struct RelayArgs {
    /// Where to serve: TCP for HTTP(S).
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:3340")]
    listen: SocketAddr,
    /// A PEM certificate chain: serve HTTPS (and QUIC address discovery) with it.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The certificate's PEM private key.
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// The UDP port of QUIC address discovery (with a certificate).
    #[arg(long, default_value_t = 7842)]
    quic_port: u16,
}

pub(crate) fn run(args: RelayArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: RelayArgs) -> anyhow::Result<()> {
    let mut config = ServerConfig::default();
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            let tls = server_tls(cert, key)?;
            // The HTTP port only answers captive-portal checks; relaying is on HTTPS.
            let mut relay = RelayConfig::new(SocketAddr::new(args.listen.ip(), 0));
            relay.tls = Some(TlsConfig::new(
                args.listen,
                CertConfig::Manual { server_config: tls },
            ));
            config.relay = Some(relay);
            config.quic = Some(QuicConfig::new(SocketAddr::new(
                args.listen.ip(),
                args.quic_port,
            )));
        }
        _ => {
            tracing::warn!(
                "serving the relay over PLAIN HTTP (no --cert): for a lab only — clients cannot tell this relay from an impostor, and there is no address discovery (no hole punching behind NAT)"
            );
            config.relay = Some(RelayConfig::new(args.listen));
            config.quic = None;
        }
    }
    let server = Server::spawn(config).await.context("starting the relay")?;
    match server.https_addr() {
        Some(address) => {
            tracing::info!(%address, quic = ?server.quic_addr(), "relay serving HTTPS; daemons use --relay https://{address}");
            println!("https://{address}");
        }
        None => {
            let address = server.http_addr().context("the relay has no address")?;
            tracing::info!(%address, "relay serving HTTP; daemons use --relay http://{address}");
            println!("http://{address}");
        }
    }
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("relay stopping");
    server.shutdown().await.context("stopping the relay")?;
    Ok(())
}

fn server_tls(cert: &PathBuf, key: &PathBuf) -> anyhow::Result<rustls::ServerConfig> {
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the certificate {}", cert.display()))?;
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the key {}", key.display()))?;
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the certificate and key do not make a TLS configuration")
}
