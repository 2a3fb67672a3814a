//! Reading request bodies with clear errors: bounded reads that answer 413 the way clients
//! can read it (after draining a bounded amount), bodies paced against trickling clients
//! (408), and JSON parsing that names the offending field.
//!
//! The pacing ([`Paced`]) is written here rather than taken from `tower-http`: its
//! `TimeoutBody` bounds the wait between two frames, which a client sending one byte every
//! few seconds never exceeds; the pace here bounds the whole body against its size.

use crate::error::Class;
use crate::ApiError;
use axum::body::{Body, Bytes};
use http_body_util::BodyExt;
use std::future::Future;
use std::io::Read;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// The limit of the small JSON bodies of the admin plane and the session routes.
pub const SMALL_BODY_LIMIT: usize = 64 * 1024;

/// Largest document accepted (bytes).
pub const MAX_DOCUMENT_BYTES: usize = 20 * 1024 * 1024;

/// How much of an oversized body is read and thrown away before answering 413, so that the
/// client finishes sending and reads the answer instead of a broken pipe (lingering close).
pub const OVERSIZE_DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// How long an oversized body is drained at most.
pub const OVERSIZE_DRAIN_TIME: Duration = Duration::from_secs(10);

/// The pace every request body must keep: complete within `grace` plus its size at `rate`
/// bytes per second (`api.body_timeout_secs`, `api.min_body_bytes_per_sec`).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub grace: Duration,
    pub rate: u64,
}

impl Pace {
    pub fn of(cfg: &civia_config::ApiConfig) -> Self {
        Self {
            grace: Duration::from_secs(cfg.body_timeout_secs),
            rate: cfg.min_body_bytes_per_sec.max(1),
        }
    }

    fn deadline(&self, started: Instant, received: u64) -> Instant {
        let allowed = self.grace + Duration::from_secs(received / self.rate);
        started + allowed
    }
}

/// The error a [`Paced`] body ends with when its client is too slow.
#[derive(Debug, thiserror::Error)]
#[error(
    "the request body was not sent in time (api.body_timeout_secs, api.min_body_bytes_per_sec)"
)]
pub struct BodyTimeout;

/// A request body that fails with [`BodyTimeout`] once it falls behind its [`Pace`]; readers
/// answer 408 and the connection is closed (the rest of the body is never read).
pub struct Paced {
    inner: Body,
    pace: Pace,
    started: Instant,
    received: u64,
    timer: Pin<Box<tokio::time::Sleep>>,
}

impl Paced {
    pub fn new(inner: Body, pace: Pace) -> Self {
        let started = Instant::now();
        let timer = Box::pin(tokio::time::sleep_until(pace.deadline(started, 0).into()));
        Self {
            inner,
            pace,
            started,
            received: 0,
            timer,
        }
    }
}

impl http_body::Body for Paced {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    let next = this.pace.deadline(this.started, this.received);
                    this.timer.as_mut().reset(next.into());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(axum::Error::new(BodyTimeout)))),
                Poll::Pending => Poll::Pending,
            },
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Middleware: every request body keeps the listener's [`Pace`].
pub async fn pace(
    axum::extract::State(pace): axum::extract::State<Pace>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    next.run(req.map(|b| Body::new(Paced::new(b, pace)))).await
}

/// Whether a body read failed because the client fell behind its pace.
fn timed_out(e: &axum::Error) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if err.is::<BodyTimeout>() {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The answer to a body that fell behind its pace.
pub fn body_timeout() -> ApiError {
    ApiError::new(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        "invalid_request_error",
        "request_timeout",
        "The request body was not sent in time: the connection is closed.",
    )
}

/// Reads a JSON request body with clear errors: 413 when larger than `limit`, 400 when empty
/// or not UTF-8.
pub async fn read_body(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let buf = read_bytes(body, limit).await?;
    if buf.is_empty() {
        return Err(ApiError::invalid_json(
            "The request body is empty: send a JSON object.",
        ));
    }
    if std::str::from_utf8(&buf).is_err() {
        return Err(ApiError::invalid_json(
            "The request body is not valid UTF-8.",
        ));
    }
    Ok(buf)
}

/// Reads a request body of any content: 413 when larger than `limit` (after draining a
/// bounded amount, so that the client reads the answer).
pub async fn read_bytes(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::of(
            Class::TooLarge,
            "request_too_large",
            format!("The request body exceeds the limit of {limit} bytes."),
        )
    };
    let mut body = body;
    let mut buf = Vec::new();
    let mut total = 0usize;
    let drain_until = Instant::now() + OVERSIZE_DRAIN_TIME;
    loop {
        let frame = if total > limit {
            if total > OVERSIZE_DRAIN_BYTES {
                return Err(too_large());
            }
            match tokio::time::timeout_at(drain_until.into(), body.frame()).await {
                Ok(f) => f,
                Err(_) => return Err(too_large()),
            }
        } else {
            body.frame().await
        };
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| {
            if timed_out(&e) {
                body_timeout()
            } else {
                ApiError::bad_request(format!("Cannot read the request body: {e}"), None)
            }
        })?;
        if let Ok(data) = frame.into_data() {
            total = total.saturating_add(data.len());
            if total <= limit {
                buf.extend_from_slice(&data);
            }
        }
    }
    if total > limit {
        return Err(too_large());
    }
    Ok(Bytes::from(buf))
}

/// Parses JSON into `T`, naming the offending field (400 `invalid_value`) or the syntax
/// error (400 `invalid_json`). Unknown fields are ignored.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_data() && path == "." {
            ApiError::bad_request(
                format!("The request body must be a JSON object: {inner}"),
                None,
            )
        } else if inner.is_data() {
            ApiError::bad_request(format!("Invalid value for `{path}`: {inner}"), Some(path))
        } else {
            ApiError::invalid_json(format!("The request body is not valid JSON: {inner}"))
        }
    })
}

/// A blocking reader over a request body, fed by an async task, bounded in size (an
/// update bundle is read by the installer on a blocking thread as it arrives).
pub struct BodyReader {
    rx: tokio::sync::mpsc::Receiver<Result<axum::body::Bytes, String>>,
    buf: axum::body::Bytes,
}

/// Set when the upload went past its limit.
pub type TooLarge = Arc<std::sync::atomic::AtomicBool>;

impl Read for BodyReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.buf = b,
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// A [`BodyReader`] over `body`, bounded to `limit` bytes, and the flag set when it went past.
pub fn body_reader(body: Body, limit: u64) -> (BodyReader, TooLarge) {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let too_large = TooLarge::default();
    let flag = too_large.clone();
    tokio::spawn(async move {
        let mut body = body;
        let mut total = 0u64;
        while let Some(frame) = body.frame().await {
            let item = match frame {
                Ok(f) => match f.into_data() {
                    Ok(d) => {
                        total += d.len() as u64;
                        if total > limit {
                            flag.store(true, std::sync::atomic::Ordering::SeqCst);
                            Err(format!(
                                "the bundle exceeds update.max_upload_bytes ({limit} bytes)"
                            ))
                        } else {
                            Ok(d)
                        }
                    }
                    Err(_) => continue,
                },
                Err(e) => Err(format!("upload interrupted: {e}")),
            };
            let stop = item.is_err();
            // The installer stopped reading (refused bundle): stop too.
            if tx.send(item).await.is_err() || stop {
                return;
            }
        }
    });
    let reader = BodyReader {
        rx,
        buf: axum::body::Bytes::new(),
    };
    (reader, too_large)
}

/// A small JSON body (at most [`SMALL_BODY_LIMIT`] bytes) parsed into `T`.
pub async fn small_json<T: serde::de::DeserializeOwned>(b: Body) -> Result<T, ApiError> {
    parse_json(&read_body(b, SMALL_BODY_LIMIT).await?)
}

/// How long a streamed body waits for its client to take the next chunk before giving up:
/// a paused download must not hold the writer (and what it holds) forever.
const STALLED_CLIENT: Duration = Duration::from_secs(300);

/// Passes what blocking code writes to an async body, a chunk at a time.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
    runtime: tokio::runtime::Handle,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        use tokio::sync::mpsc::error::SendTimeoutError;
        let chunk = Ok(Bytes::copy_from_slice(buf));
        match self
            .runtime
            .block_on(self.tx.send_timeout(chunk, STALLED_CLIENT))
        {
            Ok(()) => Ok(buf.len()),
            Err(SendTimeoutError::Closed(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the client went away",
            )),
            Err(SendTimeoutError::Timeout(_)) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client took nothing for 5 minutes",
            )),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A response body that blocking code writes: `write` runs on a blocking thread, and what
/// it writes reaches the client as it comes, 256 KiB at a time (never held whole; a slow
/// client slows the writer down). When the client goes away, the writes fail (`BrokenPipe`);
/// when it takes nothing for 5 minutes, too (`TimedOut`).
/// When `write` fails or panics, the body ends with an error, which aborts the connection: the
/// client sees a truncated download, never a complete-looking one.
pub fn from_blocking_writer<F>(write: F) -> Body
where
    F: FnOnce(&mut dyn std::io::Write) -> std::io::Result<()> + Send + 'static,
{
    let (tx, mut rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
    let runtime = tokio::runtime::Handle::current();
    let complete = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let written = complete.clone();
    tokio::task::spawn_blocking(move || {
        let mut sink = std::io::BufWriter::with_capacity(
            256 * 1024,
            ChannelWriter {
                tx: tx.clone(),
                runtime,
            },
        );
        // A panic of the writer must not end the body as if it were complete.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            write(&mut sink).and_then(|()| std::io::Write::flush(&mut sink))
        }))
        .unwrap_or_else(|_| Err(std::io::Error::other("the writer panicked")));
        drop(sink);
        match result {
            Ok(()) => written.store(true, std::sync::atomic::Ordering::Release),
            // Told if there is room; the stream ends with an error anyway.
            Err(e) => {
                let _ = tx.try_send(Err(e));
            }
        }
    });
    Body::from_stream(async_stream::stream! {
        while let Some(chunk) = rx.recv().await {
            yield chunk;
        }
        // Only a writer that finished ends the body cleanly.
        if !complete.load(std::sync::atomic::Ordering::Acquire) {
            yield Err(std::io::Error::other("the body was cut short"));
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A download must never look complete when its writer did not finish: the body ends
    /// with an error when the writer fails or panics after some bytes went out.
    #[tokio::test]
    async fn a_writer_that_fails_or_panics_never_ends_the_body_cleanly() {
        for case in ["finishes", "fails", "panics"] {
            let body = from_blocking_writer(move |w| {
                w.write_all(&[7u8; 300_000])?;
                match case {
                    "finishes" => Ok(()),
                    "fails" => Err(std::io::Error::other("disk error")),
                    _ => panic!("writer bug"),
                }
            });
            let collected = body.collect().await;
            match case {
                "finishes" => assert_eq!(collected.unwrap().to_bytes().len(), 300_000),
                _ => assert!(collected.is_err(), "{case}: the body ended cleanly"),
            }
        }
    }
}
