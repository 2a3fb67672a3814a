//! `POST /v1/audio/transcriptions`: OpenAI-compatible meeting transcription on the box.
//!
//! The recording is streamed to a private spool file (never held in memory, never kept): the
//! speech worker reads it from there, and the file is deleted as soon as the transcription
//! ends, fails, or the client leaves. Answers in OpenAI's formats (json, text, srt, vtt,
//! verbose_json), or as server-sent events with progress when `stream=true`.

use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_ipc::speech::TranscribeRequest;
use civia_metering::UsageTicket;
use civia_openai::transcription::{
    done_event, join_text, progress_event, render, segment_event, Params, Rendered, Transcript,
};
use civia_supervisor::{SpoolFile, Step, Transcribed, Transcription};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;

/// Longest text field of the form (`prompt` included), and all of them together.
const MAX_FIELD_BYTES: usize = 16 * 1024;
const MAX_FIELDS_BYTES: usize = 64 * 1024;
/// Most parts in the form.
const MAX_FIELDS: usize = 32;
/// What the form may hold besides the recording (fields, part headers, boundaries).
const MAX_FORM_OVERHEAD: u64 = 1024 * 1024;

struct Upload {
    file: SpoolFile,
    filename: Option<String>,
    fields: HashMap<String, String>,
}

fn multipart_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(
        format!("invalid multipart form: {e}; send the recording in the `file` field (multipart/form-data)"),
        None,
    )
}

fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "invalid_request_error",
        "audio_too_large",
        format!("the file is larger than the limit of {limit} bytes"),
    )
    .with_details(serde_json::json!({"reason": "too_large", "max_bytes": limit}))
}

/// Streams the form: the file to the spool directory, the other fields into memory.
async fn receive(st: &ApiState, req: Request) -> Result<Upload, ApiError> {
    let limit = st.config.speech.max_upload_bytes;
    // The whole stream is bounded too: part headers or fields that never end cannot grow
    // civiad's memory past it (the file itself goes to disk and has its own limit).
    let bound = limit as usize + crate::body::OVERSIZE_DRAIN_BYTES + MAX_FORM_OVERHEAD as usize;
    let (parts, body) = req.into_parts();
    let req = Request::from_parts(parts, Body::new(http_body_util::Limited::new(body, bound)));
    let mut form = Multipart::from_request(req, &())
        .await
        .map_err(|e| multipart_error(e.body_text()))?;
    let mut file: Option<(SpoolFile, Option<String>)> = None;
    let mut fields = HashMap::new();
    let (mut parts_seen, mut text_bytes) = (0usize, 0usize);
    while let Some(mut field) = form.next_field().await.map_err(multipart_error)? {
        parts_seen += 1;
        if parts_seen > MAX_FIELDS {
            return Err(ApiError::bad_request("too many fields in the form", None));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if file.is_some() {
                return Err(ApiError::bad_request(
                    "one file per request (field `file`)",
                    Some("file".into()),
                ));
            }
            let filename = field
                .file_name()
                .map(|n| n.chars().filter(|c| !c.is_control()).take(255).collect());
            let dir = st.config.speech_spool_dir();
            let (spool, out) = SpoolFile::create(&dir).map_err(|e| {
                log::error!("cannot create a spool file in {}: {e}", dir.display());
                ApiError::internal("the file cannot be stored for its transcription")
            })?;
            let mut out = tokio::fs::File::from_std(out);
            let mut total = 0u64;
            // Past the limit the rest is read and thrown away (bounded), so that the client
            // finishes sending and reads the 413.
            let mut drain_until: Option<Instant> = None;
            loop {
                let chunk = match drain_until {
                    None => field.chunk().await.map_err(multipart_error)?,
                    Some(until) => match tokio::time::timeout_at(until.into(), field.chunk()).await
                    {
                        Ok(Ok(c)) => c,
                        _ => None,
                    },
                };
                let Some(chunk) = chunk else { break };
                total += chunk.len() as u64;
                if total > limit {
                    if drain_until.is_none() {
                        spool.remove();
                        drain_until = Some(Instant::now() + crate::body::OVERSIZE_DRAIN_TIME);
                    }
                    if total > limit + crate::body::OVERSIZE_DRAIN_BYTES as u64 {
                        break;
                    }
                    continue;
                }
                out.write_all(&chunk).await.map_err(|e| {
                    log::error!("cannot write the spool file: {e}");
                    ApiError::internal("the file cannot be stored (disk full?)")
                })?;
            }
            if drain_until.is_some() {
                return Err(too_large(limit));
            }
            out.flush().await.map_err(|e| {
                log::error!("cannot write the spool file: {e}");
                ApiError::internal("the file cannot be stored (disk full?)")
            })?;
            file = Some((spool, filename));
        } else {
            let mut text = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                text_bytes += chunk.len();
                if text.len() + chunk.len() > MAX_FIELD_BYTES || text_bytes > MAX_FIELDS_BYTES {
                    return Err(ApiError::bad_request(
                        format!("the field `{name}` is too long"),
                        Some(name),
                    ));
                }
                text.extend_from_slice(&chunk);
            }
            let text = String::from_utf8(text).map_err(|_| {
                ApiError::bad_request(
                    format!("the field `{name}` is not UTF-8"),
                    Some(name.clone()),
                )
            })?;
            // A repeated field (timestamp_granularities[]) keeps every value.
            fields
                .entry(name)
                .and_modify(|v: &mut String| {
                    v.push(',');
                    v.push_str(&text);
                })
                .or_insert(text);
        }
    }
    let Some((file, filename)) = file else {
        return Err(ApiError::bad_request(
            "no file received: send the recording in the `file` field",
            Some("file".into()),
        ));
    };
    Ok(Upload {
        file,
        filename,
        fields,
    })
}

pub async fn transcriptions(
    State(st): State<Arc<ApiState>>,
    req: Request<Body>,
) -> Result<Response, ApiError> {
    let (Some(speech), Some(speech_id)) = (st.speech.clone(), st.config.speech_model_id()) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "speech_disabled",
            "transcription is not enabled on this box (section [speech] of the configuration)",
        ));
    };
    let ext = req.extensions().clone();
    // Cheap refusals first.
    if let Some(who) = ext.get::<civia_auth::Principal>() {
        who.check_model(&speech_id)?;
    }
    let limit = st.config.speech.max_upload_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit + MAX_FORM_OVERHEAD) {
        return Err(too_large(limit));
    }
    // Refused at once when the queue is full; the place itself is taken once the recording
    // is received (a slow upload holds none; the user's uploads in flight are bounded by
    // their `concurrent_requests` quota).
    speech.check_room()?;
    let upload = receive(&st, req).await?;
    let p = Params::parse(&upload.fields, &speech_id, &st.config.speech.language)?;
    let slot = speech.reserve()?;
    let job = speech.transcribe(
        slot,
        TranscribeRequest {
            id: 0,
            audio_path: upload.file.path().to_string_lossy().into_owned(),
            filename_hint: upload.filename.clone(),
            language: p.language.clone(),
            prompt: p.prompt.clone(),
            temperature: p.temperature,
            max_duration_secs: st.config.speech.max_duration_secs,
            window_secs: st.config.speech.window_secs,
        },
    )?;
    let ticket = ext.get::<Arc<UsageTicket>>().cloned();
    let marking = marking(&st, &speech_id);
    let mut run = Transcription::new(job, upload.file);
    if p.stream {
        // The file is opened and probed before the 200: a file the box cannot read is an
        // HTTP error, like without `stream`.
        let first = match run.step().await {
            Some(step) => step?,
            None => return Err(interrupted()),
        };
        return Ok(stream(run, p.temperature, first, ticket, marking));
    }
    let done = transcript(run.collect().await?.ok_or_else(interrupted)?, p.temperature);
    if let Some(t) = &ticket {
        t.finish(
            0,
            0,
            200,
            Some(civia_base::hash::sha256_hex(done.text.as_bytes())),
        )
        .await?;
    }
    let response = match render(p.format, &done, marking) {
        Rendered::Json(v) => Json(v).into_response(),
        Rendered::Text { content_type, body } => {
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
    };
    Ok(crate::generation::marked(response, &[], None))
}

/// The AI marking of a transcript (AI Act art. 50).
fn marking(st: &ApiState, speech_id: &str) -> Value {
    json!({
        "ai_generated": true,
        "model": speech_id,
        "model_sha256": st.speech.as_ref().and_then(|s| s.status().model).map(|m| m.sha256),
    })
}

fn interrupted() -> ApiError {
    ApiError::internal("the transcription was interrupted")
}

/// The transcript in OpenAI's terms.
fn transcript(t: Transcribed, temperature: f32) -> Transcript {
    Transcript {
        temperature,
        text: join_text(&t.segments),
        segments: t.segments,
        language: t.language,
        duration_secs: t.duration_secs,
        audio_deleted: t.audio_deleted,
    }
}

/// Server-sent events: a `transcript.text.delta` per segment (and for progress alone, with
/// an empty delta), then `transcript.text.done` with the whole text and the segments.
fn stream(
    mut run: Transcription,
    temperature: f32,
    first: Step,
    ticket: Option<Arc<UsageTicket>>,
    marking: Value,
) -> Response {
    let events = async_stream::stream! {
        let guard = civia_metering::StreamGuard(ticket);
        // Progress never goes back: whisper reports a window's progress before its segments.
        let (mut processed, mut duration) = (0.0f64, None::<f64>);
        let mut first = Some(first);
        loop {
            let step = match first.take() {
                Some(s) => Ok(s),
                None => match run.step().await {
                    Some(s) => s,
                    None => break,
                },
            };
            let data = match step {
                Ok(Step::Progress { processed: p, duration: d }) => {
                    processed = processed.max(p);
                    duration = d.or(duration);
                    progress_event(processed, duration)
                }
                Ok(Step::Segment(s)) => {
                    processed = processed.max(s.end);
                    segment_event(&s, processed, duration)
                }
                Ok(Step::Done(done)) => {
                    let done = transcript(done, temperature);
                    if let Some(t) = &guard.0 {
                        if let Err(e) = t.finish(0, 0, 200, Some(civia_base::hash::sha256_hex(done.text.as_bytes()))).await {
                            yield Ok::<_, Infallible>(SseEvent::default().data(ApiError::from(e).body().to_string()));
                            return;
                        }
                    }
                    let data = done_event(&done, marking.clone());
                    yield Ok(SseEvent::default().data(data.to_string()));
                    yield Ok(SseEvent::default().data("[DONE]"));
                    return;
                }
                Err(e) => {
                    let e = ApiError::from(e);
                    log::warn!("transcription stream ended with an error: {}", e.message);
                    if let Some(t) = &guard.0 {
                        let _ = t.finish(0, 0, e.status.as_u16(), None).await;
                    }
                    yield Ok(SseEvent::default().data(e.body().to_string()));
                    return;
                }
            };
            yield Ok(SseEvent::default().data(data.to_string()));
        }
    };
    crate::generation::marked(
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response(),
        &[],
        None,
    )
}
