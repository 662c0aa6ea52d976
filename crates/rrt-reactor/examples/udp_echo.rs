//! A reactor of its own: a worker that owns a UDP socket.
//!
//! The reactor thread receives datagrams and publishes them; async code answers each by sending a
//! command back, which the worker writes to the socket. A plain client socket plays the peer.
//!
//! Run: `cargo run -p rrt-reactor --example udp_echo`

use std::{
    io,
    net::{SocketAddr, UdpSocket as StdUdpSocket},
    time::Duration,
};

use mio::{Interest, Registry, Token, event::Event, net::UdpSocket};
use rrt_reactor::{Context, Control, ReactorEvent, Rrt, Worker};

const SOCKET: Token = Token(0);

/// A datagram and who sent it.
#[derive(Debug, Clone)]
struct Datagram {
    peer: SocketAddr,
    bytes: Vec<u8>,
}

/// Owns the socket: receives on readiness, sends on command.
struct UdpWorker {
    socket: UdpSocket,
    buffer: Vec<u8>,
}

impl UdpWorker {
    fn bind(registry: &Registry, address: SocketAddr) -> io::Result<Self> {
        let mut socket = UdpSocket::bind(address)?;
        registry.register(&mut socket, SOCKET, Interest::READABLE)?;
        Ok(Self {
            socket,
            buffer: vec![0; 64 * 1024],
        })
    }
}

impl Worker for UdpWorker {
    type Event = Datagram;
    type Command = Datagram;

    fn on_ready(&mut self, _: &Event, ctx: &mut Context<'_, Datagram>) -> Control {
        loop {
            match self.socket.recv_from(&mut self.buffer) {
                Ok((len, peer)) => ctx.emit(Datagram {
                    peer,
                    bytes: self.buffer[..len].to_vec(),
                }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Control::Continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return Control::Restart,
            }
        }
    }

    fn on_command(&mut self, reply: Datagram, _: &mut Context<'_, Datagram>) -> Control {
        // UDP sends do not block on a socket buffer that has room; a full one drops the reply,
        // as UDP may.
        match self.socket.send_to(&reply.bytes, reply.peer) {
            Ok(_) => Control::Continue,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Control::Continue,
            Err(_) => Control::Restart,
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Reserve a free port, then let the worker own a socket on it.
    let address = StdUdpSocket::bind("127.0.0.1:0")?.local_addr()?;
    let reactor = Rrt::new(move |registry: &Registry| UdpWorker::bind(registry, address));
    let mut events = reactor.subscribe();
    // Datagrams sent before the worker has bound the socket would be lost.
    match events.recv().await? {
        ReactorEvent::Started { .. } => {}
        other => return Err(format!("the reactor did not start: {other:?}").into()),
    }

    let client = StdUdpSocket::bind("127.0.0.1:0")?;
    client.set_read_timeout(Some(Duration::from_secs(5)))?;
    for word in ["ping", "hello", "bye"] {
        client.send_to(word.as_bytes(), address)?;
        let datagram = loop {
            match events.recv().await? {
                ReactorEvent::Worker(datagram) => break datagram,
                ReactorEvent::Shutdown(reason) => return Err(format!("{reason:?}").into()),
                _ => continue,
            }
        };
        println!(
            "reactor received {:?} from {}",
            String::from_utf8_lossy(&datagram.bytes),
            datagram.peer
        );
        let mut bytes = b"echo: ".to_vec();
        bytes.extend_from_slice(&datagram.bytes);
        reactor.send(Datagram { bytes, ..datagram })?;

        let mut reply = [0; 64];
        let (len, _) = client.recv_from(&mut reply)?;
        println!(
            "client received {:?}",
            String::from_utf8_lossy(&reply[..len])
        );
    }
    println!("wake-ups of the reactor thread: {}", reactor.wakeups());
    Ok(())
}
