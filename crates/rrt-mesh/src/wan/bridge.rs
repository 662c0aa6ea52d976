//! A link's bridge: one QUIC stream on one side, one end of a Unix socket pair on the other,
//! whose other end the network reactor watches like any socket. Bytes only: the frames, the
//! admission and the membership are the network reactor's. The bridge also watches the
//! connection's path (relayed or direct) for status displays.

use std::time::Duration;

use futures_util::StreamExt;
use iroh::endpoint::{Connection, RecvStream, SendStream};

use super::{Path, PathCell, WanConfig, WanLink, reach::device_of};
use crate::proto::membership::Direction;

/// How long a closing link waits for its last bytes to be acknowledged.
const LINGER: Duration = Duration::from_secs(1);

/// Bridges a QUIC stream to a socket pair whose other end goes to the network reactor, until
/// either side ends; watches the connection's path meanwhile.
pub(super) async fn bridge(
    connection: &Connection,
    mut send: SendStream,
    mut recv: RecvStream,
    direction: Direction,
    config: &WanConfig,
) {
    let device = device_of(connection.remote_id());
    let (ours, theirs) = match std::os::unix::net::UnixStream::pair() {
        Ok(pair) => pair,
        Err(error) => {
            tracing::warn!(%error, "could not make a socket pair for a link");
            return;
        }
    };
    // Both ends non-blocking: one for tokio, one for the network reactor's mio poll.
    let local = ours
        .set_nonblocking(true)
        .and_then(|()| theirs.set_nonblocking(true))
        .and_then(|()| tokio::net::UnixStream::from_std(ours));
    let local = match local {
        Ok(local) => local,
        Err(error) => {
            tracing::warn!(%error, "could not watch a socket pair");
            return;
        }
    };
    let mut exporter = [0; 32];
    let exporter = connection
        .export_keying_material(&mut exporter, crate::proto::join::EXPORTER_LABEL, &[])
        .ok()
        .map(|()| exporter);
    let path = PathCell::default();
    path.set(path_of(connection));
    tracing::debug!(%device, ?direction, path = path.get().as_str(), "a wide-area link is up");
    (config.attach)(WanLink {
        socket: theirs,
        device,
        exporter,
        direction,
        path: path.clone(),
    });
    let (mut local_read, mut local_write) = local.into_split();
    let watch = async {
        let mut paths = connection.paths_stream();
        while paths.next().await.is_some() {
            let now = path_of(connection);
            if now != path.get() {
                tracing::info!(%device, path = now.as_str(), "a wide-area link changed its path");
                path.set(now);
            }
        }
        std::future::pending::<()>().await;
    };
    // Either direction ending ends the link: the network reactor closed it (or its peer did),
    // and waiting for the other direction would wait on a connection that may be dead.
    let ended = tokio::select! {
        copied = tokio::io::copy(&mut recv, &mut local_write) => copied.map(drop),
        copied = tokio::io::copy(&mut local_read, &mut send) => copied.map(drop),
        () = watch => Ok(()),
    };
    if let Err(error) = ended {
        tracing::debug!(%error, %device, "a wide-area link ended");
    }
    // What was written last (a goodbye) reaches the peer before the connection closes.
    if send.finish().is_ok() {
        let _ = tokio::time::timeout(LINGER, send.stopped()).await;
    }
    connection.close(0u32.into(), b"link closed");
}

fn path_of(connection: &Connection) -> Path {
    let paths = connection.paths();
    paths
        .iter()
        .find(|path| path.is_selected())
        .map_or(Path::Unknown, |path| {
            if path.is_relay() {
                Path::Relayed
            } else {
                Path::Direct
            }
        })
}
