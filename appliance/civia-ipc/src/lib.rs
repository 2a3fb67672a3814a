//! The protocol between the supervisor (`civiad`) and its worker processes: the runtime
//! worker (language model) here, the speech worker in [`speech`], the embedding worker in
//! [`embed`].
//!
//! Owns: the typed messages both sides exchange, the protocol version, and the framing
//! (a 4-byte big-endian length followed by one JSON document) in blocking and async form.
//!
//! Also what every worker protocol shares ([`worker::Protocol`]: hello, load, loaded or
//! refused), implemented here for the runtime worker ([`RuntimeProtocol`]), the speech
//! worker ([`speech::SpeechProtocol`]) and the embedding worker ([`embed::EmbedProtocol`]),
//! and the worker side of process plumbing: the start-up every worker binary runs
//! ([`worker::worker_main`], [`worker::handshake`]), the inherited socket, the worker's half
//! of its isolation ([`sandbox`]: checking the jail civiad built, the seccomp filter; fatal
//! when anything is missing), model file verification.
//!
//! Must never: carry anything but what one generation needs (no config files, no secrets),
//! accept a frame larger than [`MAX_FRAME_BYTES`], or log message contents (prompts are
//! personal data).

pub mod embed;
pub mod sandbox;
pub mod speech;
pub mod worker;

use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Bumped whenever a message changes shape; both sides refuse a peer with another version.
pub const PROTOCOL_VERSION: u32 = 5;

/// Upper bound of one frame, checked before allocating.
pub const MAX_FRAME_BYTES: u32 = 32 * 1024 * 1024;

/// Messages from the supervisor to the worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToWorker {
    /// First message: the supervisor's protocol version.
    Hello { version: u32 },
    /// Load the model; answered by `Loaded` or `LoadFailed`.
    Load(LoadSpec),
    /// Start (or queue) one generation.
    Generate(GenerateRequest),
    /// Stop a generation (running or queued); answered by `Finished` with `Cancelled`.
    Cancel { id: u64 },
    /// Exit cleanly.
    Shutdown,
}

/// Messages from the worker to the supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum FromWorker {
    Hello {
        version: u32,
        pid: u32,
    },
    Loaded(ModelInfo),
    LoadFailed {
        message: String,
    },
    /// The prompt of `id` was accepted and evaluated; generation starts.
    Started {
        id: u64,
        prompt_tokens: u32,
    },
    /// New text of `id`, complete UTF-8, already cut at stop sequences.
    Delta {
        id: u64,
        text: String,
    },
    Finished {
        id: u64,
        finish_reason: FinishReason,
        usage: Usage,
    },
    Failed {
        id: u64,
        kind: FailureKind,
        message: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadSpec {
    pub path: String,
    /// Expected SHA-256 (lowercase hex); checked before loading when given.
    pub sha256: Option<String>,
    pub context_length: u32,
    pub batch_size: u32,
    pub threads: u32,
    pub gpu_layers: u32,
    /// Sequences decoded together (continuous batching).
    pub n_parallel: u32,
    /// Reuse cached prompt prefixes across requests.
    pub prefix_reuse: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub sha256: String,
    pub size_bytes: u64,
    pub n_params: u64,
    /// Context window of one request, in tokens.
    pub n_ctx: u32,
    pub n_parallel: u32,
    pub n_ctx_train: u32,
    pub architecture: String,
    pub name: Option<String>,
    pub template: TemplateSource,
    /// The compute devices llama.cpp found in this worker (the CPU always; GPUs with a GPU
    /// backend built in and a driver present).
    #[serde(default)]
    pub devices: Vec<ComputeDevice>,
    /// Layers offloaded to a GPU: the configured `gpu_layers` bounded by the model's layers
    /// when a GPU device is there and the backend can offload, else 0 (all on the CPU).
    #[serde(default)]
    pub gpu_layers: u32,
}

/// A device llama.cpp can compute on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComputeDevice {
    /// llama.cpp's name, e.g. `CPU`, `Vulkan0`, `CUDA0`.
    pub name: String,
    /// What the driver says it is, e.g. `NVIDIA H200`.
    pub description: String,
    pub kind: DeviceKind,
    /// Device memory in bytes (0 when the backend does not say).
    pub memory_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    Cpu,
    Gpu,
    IntegratedGpu,
    Accelerator,
}

/// Where the chat template in use comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateSource {
    /// `tokenizer.chat_template` of the GGUF file, rendered with minijinja.
    Gguf,
    /// The GGUF template is missing or does not render: Civia's Mistral `[INST]` template.
    MistralFallback,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    pub id: u64,
    pub prompt: Prompt,
    pub params: SamplingParams,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Prompt {
    /// Rendered by the worker with the model's chat template.
    Chat { messages: Vec<ChatMessage> },
    /// Raw text completion.
    Text { text: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: Option<u32>,
    pub max_tokens: u32,
    pub stop: Vec<String>,
    pub frequency_penalty: f32,
    pub presence_penalty: f32,
    /// What the answer must be (`response_format`); `None`: free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraint: Option<Constraint>,
}

/// A constraint on the answer, enforced while sampling (a grammar: every token that would
/// leave it is refused).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Constraint {
    /// The answer is one JSON value valid against `schema`: a JSON Schema civiad checked
    /// against the subset the grammar converter handles and wrote in canonical form
    /// (`civia_openai::schema`). The worker turns it into a grammar (and caches it by the
    /// schema's SHA-256).
    JsonSchema { schema: String },
    /// The answer calls tools: [`TOOL_CALLS_MARKER`] followed by one JSON value valid
    /// against `schema` (the array of calls civiad built from the request's `tools`, checked
    /// and canonical like `JsonSchema`'s). With `text_allowed` (`tool_choice: auto`) the
    /// answer may instead be text that does not start with `[`.
    ToolCalls { schema: String, text_allowed: bool },
}

/// What opens an answer that calls tools, as text: Mistral's tool-call marker, written and
/// read as plain text (never the control token), whatever the model.
pub const TOOL_CALLS_MARKER: &str = "[TOOL_CALLS]";

/// Token counts of one generation.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u32,
    /// Prompt tokens whose KV cache was reused instead of evaluated.
    pub cached_tokens: u32,
    pub completion_tokens: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// End-of-generation token or a stop sequence.
    Stop,
    /// `max_tokens` or the end of the context.
    Length,
    /// Cancelled by the supervisor.
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The prompt does not fit in the context window.
    ContextOverflow,
    /// The prompt cannot be rendered or tokenized (bad template input).
    InvalidPrompt,
    /// The answer's constraint (a JSON schema) cannot be turned into a grammar.
    InvalidGrammar,
    /// llama.cpp failed while decoding.
    Internal,
}

/// The runtime worker's protocol ([`ToWorker`], [`FromWorker`]).
pub struct RuntimeProtocol;

impl worker::Protocol for RuntimeProtocol {
    const VERSION: u32 = PROTOCOL_VERSION;
    type ToWorker = ToWorker;
    type FromWorker = FromWorker;
    type Load = LoadSpec;
    type Info = ModelInfo;

    fn setup(msg: worker::Setup<LoadSpec>) -> ToWorker {
        match msg {
            worker::Setup::Hello { version } => ToWorker::Hello { version },
            worker::Setup::Load(l) => ToWorker::Load(l),
            worker::Setup::Shutdown => ToWorker::Shutdown,
        }
    }

    fn as_setup(msg: ToWorker) -> Result<worker::Setup<LoadSpec>, ToWorker> {
        match msg {
            ToWorker::Hello { version } => Ok(worker::Setup::Hello { version }),
            ToWorker::Load(l) => Ok(worker::Setup::Load(l)),
            ToWorker::Shutdown => Ok(worker::Setup::Shutdown),
            other => Err(other),
        }
    }

    fn report(msg: worker::Report<ModelInfo>) -> FromWorker {
        match msg {
            worker::Report::Hello { version, pid } => FromWorker::Hello { version, pid },
            worker::Report::Loaded(i) => FromWorker::Loaded(i),
            worker::Report::LoadFailed { message } => FromWorker::LoadFailed { message },
        }
    }

    fn as_report(msg: FromWorker) -> Result<worker::Report<ModelInfo>, FromWorker> {
        match msg {
            FromWorker::Hello { version, pid } => Ok(worker::Report::Hello { version, pid }),
            FromWorker::Loaded(i) => Ok(worker::Report::Loaded(i)),
            FromWorker::LoadFailed { message } => Ok(worker::Report::LoadFailed { message }),
            other => Err(other),
        }
    }

    fn model_file(load: &LoadSpec) -> worker::ModelFile<'_> {
        worker::ModelFile {
            path: &load.path,
            sha256: load.sha256.as_deref(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("IPC I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("IPC frame of {0} bytes exceeds the {MAX_FRAME_BYTES}-byte limit")]
    FrameTooLarge(u64),
    #[error("IPC message is not valid: {0}")]
    Decode(#[from] serde_json::Error),
    #[error("peer closed the IPC connection")]
    Closed,
}

fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, IpcError> {
    let body = serde_json::to_vec(msg)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME_BYTES)
        .ok_or(IpcError::FrameTooLarge(body.len() as u64))?;
    let mut frame = Vec::with_capacity(body.len() + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(&body);
    Ok(frame)
}

fn check_len(header: [u8; 4]) -> Result<usize, IpcError> {
    let len = u32::from_be_bytes(header);
    if len > MAX_FRAME_BYTES {
        return Err(IpcError::FrameTooLarge(u64::from(len)));
    }
    Ok(len as usize)
}

fn map_eof(e: std::io::Error) -> IpcError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        IpcError::Closed
    } else {
        IpcError::Io(e)
    }
}

/// The file descriptor on which the supervisor hands a worker its end of the socket pair.
pub const INHERITED_FD: i32 = 3;

/// The IPC socket a worker process inherited from the supervisor on [`INHERITED_FD`]; None
/// when that descriptor is not a socket (the worker was started by hand). Call it once.
pub fn inherited_socket() -> Option<std::os::unix::net::UnixStream> {
    use std::os::fd::FromRawFd;
    // SAFETY: fstat only reads the metadata of the descriptor into a zeroed, properly sized
    // struct.
    let is_socket = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(INHERITED_FD, &mut st) == 0 && (st.st_mode & libc::S_IFMT) == libc::S_IFSOCK
    };
    // SAFETY: the descriptor is a socket (checked above) that the supervisor handed to this
    // process alone; the UnixStream owns it from here on.
    is_socket.then(|| unsafe { std::os::unix::net::UnixStream::from_raw_fd(INHERITED_FD) })
}

/// A worker's check of the model file it is asked to load: `magic` judges the first four
/// bytes (the format), then the whole file is hashed and compared with `expected` (hex)
/// when given. Returns the SHA-256 (lowercase hex) or a message naming the file.
pub fn verify_model_file(
    path: &str,
    magic: impl Fn([u8; 4]) -> Result<(), String>,
    expected: Option<&str>,
) -> Result<String, String> {
    use sha2::{Digest, Sha256};
    let mut f =
        std::fs::File::open(path).map_err(|e| format!("cannot open model file {path}: {e}"))?;
    let mut head = [0u8; 4];
    f.read_exact(&mut head)
        .map_err(|_| format!("{path} is not a model file (too short)"))?;
    magic(head)?;
    let mut hasher = Sha256::new();
    hasher.update(head);
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f
            .read(&mut buf)
            .map_err(|e| format!("cannot read model file {path}: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(want) = expected {
        if !want.eq_ignore_ascii_case(&digest) {
            return Err(format!(
                "SHA-256 of {path} is {digest}, the configuration expects {want}: refusing to load"
            ));
        }
    }
    Ok(digest)
}

/// Writes one frame (blocking).
pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), IpcError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame (blocking). A clean end of stream is [`IpcError::Closed`].
pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read) -> Result<T, IpcError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header).map_err(map_eof)?;
    let mut body = vec![0u8; check_len(header)?];
    r.read_exact(&mut body).map_err(map_eof)?;
    Ok(serde_json::from_slice(&body)?)
}

/// Writes one frame (async).
pub async fn write_frame_async<T: Serialize>(
    w: &mut (impl AsyncWrite + Unpin),
    msg: &T,
) -> Result<(), IpcError> {
    w.write_all(&encode(msg)?).await?;
    w.flush().await?;
    Ok(())
}

/// Reads one frame (async). A clean end of stream is [`IpcError::Closed`].
pub async fn read_frame_async<T: for<'de> Deserialize<'de>>(
    r: &mut (impl AsyncRead + Unpin),
) -> Result<T, IpcError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header).await.map_err(map_eof)?;
    let mut body = vec![0u8; check_len(header)?];
    r.read_exact(&mut body).await.map_err(map_eof)?;
    Ok(serde_json::from_slice(&body)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ToWorker {
        ToWorker::Generate(GenerateRequest {
            id: 7,
            prompt: Prompt::Chat {
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: "Bonjour, é€ 😀".into(),
                }],
            },
            params: SamplingParams {
                temperature: 0.0,
                top_p: 1.0,
                seed: Some(3),
                max_tokens: 16,
                stop: vec!["\n\n".into()],
                frequency_penalty: 0.0,
                presence_penalty: 0.0,
                constraint: Some(Constraint::JsonSchema {
                    schema: r#"{"type":"object"}"#.into(),
                }),
            },
        })
    }

    #[test]
    fn blocking_round_trip() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).unwrap();
        write_frame(&mut buf, &ToWorker::Shutdown).unwrap();
        let mut r = &buf[..];
        assert_eq!(read_frame::<ToWorker>(&mut r).unwrap(), sample());
        assert_eq!(read_frame::<ToWorker>(&mut r).unwrap(), ToWorker::Shutdown);
        assert!(matches!(
            read_frame::<ToWorker>(&mut r),
            Err(IpcError::Closed)
        ));
    }

    #[test]
    fn oversized_header_is_refused_before_allocating() {
        let mut r = &u32::MAX.to_be_bytes()[..];
        assert!(matches!(
            read_frame::<ToWorker>(&mut r),
            Err(IpcError::FrameTooLarge(_))
        ));
    }

    #[test]
    fn truncated_and_garbage_frames_are_errors() {
        let mut buf = Vec::new();
        write_frame(&mut buf, &sample()).unwrap();
        let mut r = &buf[..buf.len() - 3];
        assert!(matches!(
            read_frame::<ToWorker>(&mut r),
            Err(IpcError::Closed)
        ));
        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(b"{{{{{");
        assert!(matches!(
            read_frame::<ToWorker>(&mut &garbage[..]),
            Err(IpcError::Decode(_))
        ));
    }

    #[tokio::test]
    async fn async_round_trip_over_a_socket_pair() {
        let (mut a, mut b) = tokio::net::UnixStream::pair().unwrap();
        write_frame_async(&mut a, &sample()).await.unwrap();
        assert_eq!(
            read_frame_async::<ToWorker>(&mut b).await.unwrap(),
            sample()
        );
        drop(a);
        assert!(matches!(
            read_frame_async::<ToWorker>(&mut b).await,
            Err(IpcError::Closed)
        ));
    }
}
