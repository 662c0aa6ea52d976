//! The async client (tokio): the same requests as [`crate::Client`], for programs that must not
//! block a thread on the daemon (the TUI, an editor plugin).

use std::{io, marker::PhantomData, path::Path};

use rrt_sync::{ClipEntry, Cursor};
use serde::de::DeserializeOwned;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader},
    net::{
        UnixStream,
        unix::{OwnedReadHalf, OwnedWriteHalf},
    },
};

use crate::{
    Answer, ClipboardEvent, ControlError, DocumentText, Item, Mesh, ReplicaEvent, Request,
    StateSnapshot, upload,
};

/// A connection to a daemon's control socket, for async programs.
///
/// ```no_run
/// use rrt_control::{AsyncClient, ClipboardEvent, Mesh};
///
/// # async fn run() -> Result<(), rrt_control::ControlError> {
/// let client = AsyncClient::connect(&Mesh::new("default", None), None).await?;
/// let mut changes = client.watch().await?;
/// while let Some(event) = changes.next().await {
///     match event? {
///         ClipboardEvent::Entry(entry) => println!("{}", entry.text),
///         ClipboardEvent::Lagged { missed } => println!("({missed} changes skipped)"),
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct AsyncClient {
    connection: BufReader<UnixStream>,
}

impl AsyncClient {
    /// Connects to the daemon named `instance` of `mesh` (any of its daemons when `None`).
    pub async fn connect(mesh: &Mesh, instance: Option<&str>) -> Result<Self, ControlError> {
        Self::connect_socket(&mesh.daemon(instance)?.control_socket).await
    }

    /// Connects to a control socket, refusing one another user serves.
    pub async fn connect_socket(socket: &Path) -> Result<Self, ControlError> {
        let stream = UnixStream::connect(socket).await.map_err(|source| {
            rrt_mesh::same_user::PeerError::Connect {
                socket: socket.to_owned(),
                source,
            }
        })?;
        rrt_mesh::same_user::verify(socket, &stream)?;
        Ok(Self {
            connection: BufReader::new(stream),
        })
    }

    /// Sends `request` and reads its one-line answer.
    pub async fn call<T: DeserializeOwned>(
        &mut self,
        request: &Request,
    ) -> Result<T, ControlError> {
        self.send(request).await?;
        self.answer().await
    }

    /// Copies a value of any kind, each item's bytes streamed from its reader. The new entry
    /// (`None`: it was the current value already).
    pub async fn copy_content(
        &mut self,
        items: Vec<(String, &mut (dyn AsyncRead + Unpin + Send))>,
    ) -> Result<Option<ClipEntry>, ControlError> {
        let request = Request::CopyContent {
            items: items
                .iter()
                .map(|(mime, _)| Item { mime: mime.clone() })
                .collect(),
        };
        self.send(&request).await?;
        let mut sent = Ok(());
        for (_, reader) in items {
            sent = upload::send_item_async(reader, self.connection.get_mut())
                .await
                .map(drop);
            if sent.is_err() {
                break;
            }
        }
        match self.answer().await {
            Err(ControlError::Closed) => Err(sent.err().map_or(ControlError::Closed, Into::into)),
            answer => answer,
        }
    }

    /// The current clipboard value, then every change.
    pub async fn watch(mut self) -> Result<AsyncEvents<ClipboardEvent>, ControlError> {
        self.send(&Request::Watch).await?;
        Ok(AsyncEvents::new(self))
    }

    /// A document's text now and after every change.
    pub async fn watch_document(
        mut self,
        name: &str,
    ) -> Result<AsyncEvents<DocumentText>, ControlError> {
        let name = name.to_owned();
        self.send(&Request::ScratchWatch { name }).await?;
        Ok(AsyncEvents::new(self))
    }

    /// Keeps a replica of document `name`: the first half gives what the replica lacks (the
    /// whole document first, then each change), the second takes the replica's own edits. Two
    /// halves, so one task may wait for the daemon while another sends.
    pub async fn open(
        mut self,
        name: &str,
    ) -> Result<(ReplicaUpdates, ReplicaEdits), ControlError> {
        let name = name.to_owned();
        self.send(&Request::Open { name }).await?;
        let (reader, writer) = self.connection.into_inner().into_split();
        Ok((
            ReplicaUpdates {
                reader: BufReader::new(reader),
            },
            ReplicaEdits { writer },
        ))
    }

    /// The app state now and after every change.
    pub async fn watch_state(mut self) -> Result<AsyncEvents<StateSnapshot>, ControlError> {
        self.send(&Request::StateWatch).await?;
        Ok(AsyncEvents::new(self))
    }

    pub(crate) async fn send(&mut self, request: &Request) -> Result<(), ControlError> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        let stream = self.connection.get_mut();
        match stream.write_all(&line).await {
            Ok(()) => Ok(stream.flush().await?),
            // The daemon's answer says more than the broken pipe (see `Client`).
            Err(error)
                if matches!(
                    error.kind(),
                    io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                ) =>
            {
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn answer<T: DeserializeOwned>(&mut self) -> Result<T, ControlError> {
        read_answer(&mut self.connection).await
    }
}

/// The events of a stream, for async programs.
#[derive(Debug)]
pub struct AsyncEvents<T> {
    client: AsyncClient,
    event: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> AsyncEvents<T> {
    pub(crate) fn new(client: AsyncClient) -> Self {
        Self {
            client,
            event: PhantomData,
        }
    }

    /// The next event; `None` once the daemon ends the stream. Cancel-safe only between
    /// events: a `select!` that drops a half-read line loses it.
    pub async fn next(&mut self) -> Option<Result<T, ControlError>> {
        match self.client.answer().await {
            Err(ControlError::Closed) => None,
            event => Some(event),
        }
    }
}

/// What a replica lacks and where the other editors are, from the daemon
/// ([`AsyncClient::open`]).
#[derive(Debug)]
pub struct ReplicaUpdates {
    reader: BufReader<OwnedReadHalf>,
}

impl ReplicaUpdates {
    /// The next event; `None` once the daemon ends the stream. A refused update of the
    /// replica's comes back as an error here.
    pub async fn next(&mut self) -> Option<Result<ReplicaEvent, ControlError>> {
        match read_answer::<ReplicaEvent>(&mut self.reader).await {
            Err(ControlError::Closed) => None,
            answer => Some(answer),
        }
    }
}

/// A replica's edits, to the daemon ([`AsyncClient::open`]).
#[derive(Debug)]
pub struct ReplicaEdits {
    writer: OwnedWriteHalf,
}

impl ReplicaEdits {
    /// Sends an update the replica made on `generation` of the document.
    pub async fn send(
        &mut self,
        generation: rrt_sync::Generation,
        update: Vec<u8>,
    ) -> Result<(), ControlError> {
        self.write(&Request::Update { update, generation }).await
    }

    /// Says where this editor's cursor is (see [`Request::Presence`]).
    pub async fn presence(&mut self, cursor: Option<Cursor>) -> Result<(), ControlError> {
        self.write(&Request::Presence { cursor, name: None }).await
    }

    async fn write(&mut self, request: &Request) -> Result<(), ControlError> {
        let mut line = serde_json::to_vec(request)?;
        line.push(b'\n');
        self.writer.write_all(&line).await?;
        Ok(self.writer.flush().await?)
    }
}

/// Reads one answer line.
async fn read_answer<T: DeserializeOwned>(
    reader: &mut (impl AsyncBufReadExt + Unpin),
) -> Result<T, ControlError> {
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).await? == 0 {
        return Err(ControlError::Closed);
    }
    match serde_json::from_slice(&line)? {
        Answer::Ok(value) => Ok(value),
        Answer::Error(refusal) => Err(refusal.into()),
    }
}
