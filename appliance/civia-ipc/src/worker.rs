//! What every worker protocol shares, seen from both ends, and the start-up every worker
//! process runs.
//!
//! A worker protocol ([`Protocol`]) is two message enums (supervisor → worker, worker →
//! supervisor) that begin the same way: `Hello` both ways (version check), then `Load` answered
//! by `Loaded` or `LoadFailed` (or `Shutdown` instead of `Load`). [`Setup`] and [`Report`] are
//! those common messages; each protocol converts them to and from its own enums, so the
//! supervisor's engine (`civia-supervisor`) and the worker start-up below are written once.
//!
//! A worker binary's `main` is [`worker_main`]; its `run_worker(stream)` calls [`handshake`],
//! then loads its model through the [`Link`] (which reports a refusal to the supervisor with
//! [`Link::refuse`]) and serves.

use crate::{read_frame, write_frame, IpcError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::fmt::{Debug, Display};
use std::marker::PhantomData;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;

/// The supervisor's messages before a worker serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Setup<L> {
    Hello { version: u32 },
    Load(L),
    Shutdown,
}

/// A worker's messages before it serves.
#[derive(Debug, Clone, PartialEq)]
pub enum Report<I> {
    Hello { version: u32, pid: u32 },
    Loaded(I),
    LoadFailed { message: String },
}

/// The model file a load request names.
pub struct ModelFile<'a> {
    pub path: &'a str,
    /// Expected SHA-256 (hex), when configured.
    pub sha256: Option<&'a str>,
}

/// One worker protocol: its messages, version, load request and model description.
pub trait Protocol: Send + Sync + 'static {
    /// Bumped whenever a message changes shape; both sides refuse a peer with another one.
    const VERSION: u32;
    type ToWorker: Serialize + DeserializeOwned + Debug + Send + Sync + 'static;
    type FromWorker: Serialize + DeserializeOwned + Debug + Send + Sync + 'static;
    /// What to load (path, hash, threads...).
    type Load: Clone + Debug + Send + Sync + 'static;
    /// What was loaded (reported in `Loaded`).
    type Info: Clone + Debug + Send + Sync + 'static;

    fn setup(msg: Setup<Self::Load>) -> Self::ToWorker;
    /// The common message `msg` is, or `msg` itself when it is one of the protocol's own.
    fn as_setup(msg: Self::ToWorker) -> Result<Setup<Self::Load>, Self::ToWorker>;
    fn report(msg: Report<Self::Info>) -> Self::FromWorker;
    /// The common message `msg` is, or `msg` itself when it is one of the protocol's own.
    fn as_report(msg: Self::FromWorker) -> Result<Report<Self::Info>, Self::FromWorker>;
    fn model_file(load: &Self::Load) -> ModelFile<'_>;
}

/// Why a worker stopped before serving.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ipc(#[from] IpcError),
    #[error("protocol version mismatch: supervisor speaks {peer}, worker speaks {ours}")]
    Version { peer: u32, ours: u32 },
    #[error("unexpected message from the supervisor: {0}")]
    Unexpected(&'static str),
    /// The model was refused (already reported to the supervisor as `LoadFailed`).
    #[error("model load failed: {0}")]
    Refused(String),
}

/// A worker's connection to its supervisor.
pub struct Link<P: Protocol> {
    pub reader: UnixStream,
    pub writer: UnixStream,
    protocol: PhantomData<fn() -> P>,
}

/// A worker that shook hands and was asked to load `load`.
pub struct Started<P: Protocol> {
    pub load: P::Load,
    pub link: Link<P>,
}

/// The worker's half of the start: answers `Hello` (checking the version) and waits for the
/// load request. `None` when the supervisor says `Shutdown` instead.
pub fn handshake<P: Protocol>(stream: UnixStream) -> Result<Option<Started<P>>, StartError> {
    let reader = stream.try_clone().map_err(IpcError::Io)?;
    let mut link = Link {
        reader,
        writer: stream,
        protocol: PhantomData,
    };
    match P::as_setup(link.read()?) {
        Ok(Setup::Hello { version }) if version == P::VERSION => {}
        Ok(Setup::Hello { version }) => {
            return Err(StartError::Version {
                peer: version,
                ours: P::VERSION,
            })
        }
        _ => return Err(StartError::Unexpected("expected hello")),
    }
    link.send(&P::report(Report::Hello {
        version: P::VERSION,
        pid: std::process::id(),
    }))?;
    match P::as_setup(link.read()?) {
        Ok(Setup::Load(load)) => Ok(Some(Started { load, link })),
        Ok(Setup::Shutdown) => Ok(None),
        _ => Err(StartError::Unexpected("expected load")),
    }
}

impl<P: Protocol> Link<P> {
    /// Reads one message (blocking).
    pub fn read(&mut self) -> Result<P::ToWorker, IpcError> {
        read_frame(&mut self.reader)
    }

    /// Sends one message (blocking).
    pub fn send(&mut self, msg: &P::FromWorker) -> Result<(), IpcError> {
        write_frame(&mut self.writer, msg)
    }

    /// Reports a load failure to the supervisor and turns it into the worker's error.
    pub fn refuse(&mut self, message: String) -> StartError {
        match self.send(&P::report(Report::LoadFailed {
            message: message.clone(),
        })) {
            Ok(()) => StartError::Refused(message),
            Err(e) => e.into(),
        }
    }

    /// Checks the model file `load` names ([`crate::verify_model_file`]: `magic` judges its
    /// format, the hash is compared when configured) and returns its SHA-256; refuses the
    /// load when the check fails.
    pub fn verify_model(
        &mut self,
        load: &P::Load,
        magic: impl Fn([u8; 4]) -> Result<(), String>,
    ) -> Result<String, StartError> {
        let file = P::model_file(load);
        crate::verify_model_file(file.path, magic, file.sha256).map_err(|m| self.refuse(m))
    }

    /// Reports the model loaded: the worker serves from now on.
    pub fn loaded(&mut self, info: P::Info) -> Result<(), IpcError> {
        self.send(&P::report(Report::Loaded(info)))
    }
}

/// How a worker binary names itself in its messages.
pub struct WorkerNames {
    /// In logs: `runtime worker`, `speech worker`.
    pub name: &'static str,
    /// The command line civiad starts: `civiad runtime-worker`, `civia-speech-worker`.
    pub command: &'static str,
}

/// Exit status of a worker that refuses to run outside its sandbox.
pub const EXIT_NOT_ISOLATED: u8 = 78;

/// A worker process's `main`: takes the socket inherited from civiad (exit status 2 when
/// started by hand, without one), checks its jail and installs its seccomp filter (while
/// single-threaded, before any input: [`crate::sandbox::enter`]; any failure is fatal, exit
/// status [`EXIT_NOT_ISOLATED`] with the reason on stderr), starts logging at
/// `CIVIA_LOG_LEVEL` (default `info`) through `init_logging` and runs `run` on the socket.
/// Exit status 0 when `run` ends cleanly, 1 when it fails (logged).
pub fn worker_main<E: Display>(
    names: &WorkerNames,
    init_logging: impl FnOnce(&str),
    run: impl FnOnce(UnixStream) -> Result<(), E>,
) -> ExitCode {
    let Some(stream) = crate::inherited_socket() else {
        eprintln!(
            "{} is started by civiad itself (IPC socket on fd 3)",
            names.command
        );
        return ExitCode::from(2);
    };
    // Before anything starts a thread or reads a byte of a model, a prompt or a recording.
    if let Err(e) = crate::sandbox::enter() {
        eprintln!(
            "{}: refusing to run outside its sandbox: {e}",
            names.command
        );
        return ExitCode::from(EXIT_NOT_ISOLATED);
    }
    init_logging(&std::env::var("CIVIA_LOG_LEVEL").unwrap_or_else(|_| "info".into()));
    match run(stream) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{}: {e}", names.name);
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::{SpeechLoadSpec, SpeechProtocol, ToSpeech};
    use crate::{FromWorker, LoadSpec, RuntimeProtocol, ToWorker, PROTOCOL_VERSION};

    fn load() -> LoadSpec {
        LoadSpec {
            path: "/nonexistent/model.gguf".into(),
            sha256: None,
            context_length: 0,
            batch_size: 8,
            threads: 1,
            gpu_layers: 0,
            n_parallel: 1,
            prefix_reuse: false,
        }
    }

    #[test]
    fn handshake_then_refused_load_is_reported() {
        let (mut sup, worker) = UnixStream::pair().unwrap();
        let t = std::thread::spawn(move || {
            let mut started = handshake::<RuntimeProtocol>(worker).unwrap().unwrap();
            let err = started
                .link
                .verify_model(&started.load.clone(), |_| Ok(()))
                .unwrap_err();
            assert!(matches!(err, StartError::Refused(_)), "{err}");
        });
        write_frame(
            &mut sup,
            &ToWorker::Hello {
                version: PROTOCOL_VERSION,
            },
        )
        .unwrap();
        assert!(matches!(
            read_frame::<FromWorker>(&mut sup).unwrap(),
            FromWorker::Hello {
                version: PROTOCOL_VERSION,
                ..
            }
        ));
        write_frame(&mut sup, &ToWorker::Load(load())).unwrap();
        match read_frame::<FromWorker>(&mut sup).unwrap() {
            FromWorker::LoadFailed { message } => {
                assert!(message.contains("cannot open model file"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        t.join().unwrap();
    }

    #[test]
    fn handshake_refuses_another_version_and_accepts_shutdown() {
        let (mut sup, worker) = UnixStream::pair().unwrap();
        write_frame(&mut sup, &ToSpeech::Hello { version: 999 }).unwrap();
        assert!(matches!(
            handshake::<SpeechProtocol>(worker),
            Err(StartError::Version { peer: 999, .. })
        ));
        let (mut sup, worker) = UnixStream::pair().unwrap();
        write_frame(
            &mut sup,
            &SpeechProtocol::setup(Setup::<SpeechLoadSpec>::Hello {
                version: SpeechProtocol::VERSION,
            }),
        )
        .unwrap();
        write_frame(&mut sup, &ToSpeech::Shutdown).unwrap();
        assert!(handshake::<SpeechProtocol>(worker).unwrap().is_none());
    }
}
