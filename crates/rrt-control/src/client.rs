//! The blocking client: one connection to a daemon, requests answered in order.

use std::{
    io::{self, BufRead, BufReader, ErrorKind, Read, Write},
    marker::PhantomData,
    os::unix::net::UnixStream,
    path::Path,
    time::Duration,
};

use rrt_sync::{BlobHash, ClipEntry};
use serde::de::DeserializeOwned;

use crate::{
    Answer, ClipboardEvent, ControlError, DocumentText, Item, Mesh, RawHeader, Request,
    StateSnapshot, rrt_mesh::PairingEvent, upload,
};

/// A connection to a daemon's control socket.
///
/// ```no_run
/// use rrt_control::{Client, Mesh};
///
/// # fn main() -> Result<(), rrt_control::ControlError> {
/// let mut client = Client::connect(&Mesh::new("default", None), None)?;
/// client.copy("hello from a script".to_owned())?;
/// if let Some(entry) = client.paste()? {
///     println!("{}", entry.text);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Client {
    connection: BufReader<UnixStream>,
}

impl Client {
    /// Connects to the daemon named `instance` of `mesh` (any of its daemons when `None`).
    pub fn connect(mesh: &Mesh, instance: Option<&str>) -> Result<Self, ControlError> {
        Self::connect_socket(&mesh.daemon(instance)?.control_socket)
    }

    /// Connects to a control socket, refusing one another user serves.
    pub fn connect_socket(socket: &Path) -> Result<Self, ControlError> {
        let stream = rrt_mesh::same_user::connect(socket)?;
        Ok(Self {
            connection: BufReader::new(stream),
        })
    }

    /// How long a read waits for the daemon (`None`: for ever, the default).
    pub fn set_timeout(&self, timeout: Option<Duration>) -> Result<(), ControlError> {
        self.connection.get_ref().set_read_timeout(timeout)?;
        Ok(())
    }

    /// Sends `request` and reads its one-line answer.
    pub fn call<T: DeserializeOwned>(&mut self, request: &Request) -> Result<T, ControlError> {
        self.send(request)?;
        self.answer()
    }

    /// Copies a value of any kind: each item's bytes read from its reader and streamed to the
    /// daemon, never whole in memory. The new entry (`None`: it was the current value already).
    pub fn copy_content(
        &mut self,
        items: Vec<(String, &mut dyn Read)>,
    ) -> Result<Option<ClipEntry>, ControlError> {
        let request = Request::CopyContent {
            items: items
                .iter()
                .map(|(mime, _)| Item { mime: mime.clone() })
                .collect(),
        };
        self.send(&request)?;
        let mut sent = Ok(());
        for (_, reader) in items {
            sent = upload::send_item(reader, self.connection.get_mut()).map(drop);
            if sent.is_err() {
                break;
            }
        }
        // A daemon that refused may close before taking everything: its answer says why.
        match self.answer() {
            Err(ControlError::Closed) => Err(sent.err().map_or(ControlError::Closed, Into::into)),
            answer => answer,
        }
    }

    /// Writes the current value's representation of type `mime` to `out` (fetched from a peer
    /// first if need be); returns its header.
    pub fn paste_type(
        &mut self,
        mime: &str,
        out: &mut impl Write,
    ) -> Result<RawHeader, ControlError> {
        let mime = mime.to_owned();
        self.raw(&Request::PasteType { mime }, out)
    }

    /// Writes the blob with this hash and size (a file of a copied file list) to `out`.
    pub fn blob(
        &mut self,
        hash: BlobHash,
        size: u64,
        out: &mut impl Write,
    ) -> Result<RawHeader, ControlError> {
        self.raw(&Request::Blob { hash, size }, out)
    }

    /// The current clipboard value, then every change.
    pub fn watch(mut self) -> Result<Events<ClipboardEvent>, ControlError> {
        self.send(&Request::Watch)?;
        Ok(Events::new(self))
    }

    /// A document's text now and after every change (once for a run of changes it fell
    /// behind on).
    pub fn watch_document(mut self, name: &str) -> Result<Events<DocumentText>, ControlError> {
        let name = name.to_owned();
        self.send(&Request::ScratchWatch { name })?;
        Ok(Events::new(self))
    }

    /// The app state now and after every change.
    pub fn watch_state(mut self) -> Result<Events<StateSnapshot>, ControlError> {
        self.send(&Request::StateWatch)?;
        Ok(Events::new(self))
    }

    /// Invites a device to pair: the ticket is the first event; answer the code with
    /// [`Events::confirm`].
    pub fn invite(mut self, ttl: Duration) -> Result<Events<PairingEvent>, ControlError> {
        self.send(&Request::Invite {
            ttl_s: ttl.as_secs(),
        })?;
        Ok(Events::new(self))
    }

    /// Pairs with the device that made `ticket`; answer the code with [`Events::confirm`].
    pub fn join(mut self, ticket: &str) -> Result<Events<PairingEvent>, ControlError> {
        let ticket = ticket.to_owned();
        self.send(&Request::Join { ticket })?;
        Ok(Events::new(self))
    }

    fn send(&mut self, request: &Request) -> Result<(), ControlError> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        match self.connection.get_mut().write_all(&line) {
            Ok(()) => Ok(()),
            // A daemon refusing a request (too long, say) answers why and closes before it has
            // read it all: its answer says more than the broken pipe.
            Err(error)
                if matches!(
                    error.kind(),
                    ErrorKind::BrokenPipe | ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    fn answer<T: DeserializeOwned>(&mut self) -> Result<T, ControlError> {
        let mut line = Vec::new();
        if self.connection.read_until(b'\n', &mut line)? == 0 {
            return Err(ControlError::Closed);
        }
        match serde_json::from_slice(&line)? {
            Answer::Ok(value) => Ok(value),
            Answer::Error(refusal) => Err(refusal.into()),
        }
    }

    fn raw(&mut self, request: &Request, out: &mut impl Write) -> Result<RawHeader, ControlError> {
        self.send(request)?;
        let header: RawHeader = self.answer()?;
        let got = io::copy(&mut (&mut self.connection).take(header.size), out)?;
        if got != header.size {
            return Err(ControlError::Incomplete {
                got,
                expected: header.size,
            });
        }
        Ok(header)
    }
}

/// The events of a stream, one per line, until the daemon or the caller closes it.
#[derive(Debug)]
pub struct Events<T> {
    client: Client,
    event: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> Events<T> {
    fn new(client: Client) -> Self {
        Self {
            client,
            event: PhantomData,
        }
    }
}

impl Events<PairingEvent> {
    /// The person's answer to the code shown, once asked.
    pub fn confirm(&mut self, accepted: bool) -> Result<(), ControlError> {
        self.client.send(&Request::Confirm { accepted })
    }
}

impl<T: DeserializeOwned> Iterator for Events<T> {
    type Item = Result<T, ControlError>;

    /// The next event; `None` once the daemon ends the stream.
    fn next(&mut self) -> Option<Self::Item> {
        match self.client.answer() {
            Err(ControlError::Closed) => None,
            event => Some(event),
        }
    }
}
