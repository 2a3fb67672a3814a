//! The worker loop: handshake and model verification (`civia_ipc::worker`, shared with the
//! runtime worker), whisper load, then one job at a time.

use crate::SpeechError;
use civia_audio::window::{cut_point, is_silent};
use civia_audio::{AudioStream, RATE};
use civia_ipc::speech::{
    FromSpeech, Segment, SpeechLoadSpec, SpeechModelInfo, SpeechProtocol, ToSpeech,
    TranscribeRequest,
};
use civia_ipc::worker::{handshake, Link, StartError, Started};
use civia_ipc::{read_frame, write_frame, IpcError};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

/// A segment whisper itself thinks is not speech (its no-speech probability above this and
/// its tokens unlikely) is dropped: whisper invents sentences over noise.
const NO_SPEECH_PROB: f64 = 0.6;
const NO_SPEECH_LOGPROB: f64 = -1.0;
/// whisper needs at least one second of audio: shorter windows are padded with silence.
const MIN_WINDOW: usize = RATE + RATE / 10;

type Out = Arc<Mutex<UnixStream>>;

fn send(out: &Out, msg: &FromSpeech) -> Result<(), IpcError> {
    let mut w = out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    write_frame(&mut *w, msg)
}

/// Runs the worker on an already connected socket until `Shutdown` or the socket closes.
pub fn run_worker(stream: UnixStream) -> Result<(), SpeechError> {
    let Some(Started {
        load: spec,
        mut link,
    }) = handshake::<SpeechProtocol>(stream)?
    else {
        return Ok(());
    };
    let (ctx, info) = load(&spec, &mut link)?;
    log::info!(
        "speech worker {} loaded {} (whisper {}, gpu {})",
        std::process::id(),
        spec.path,
        info.kind,
        info.gpu
    );
    link.loaded(info)?;
    let Link {
        mut reader, writer, ..
    } = link;
    let out: Out = Arc::new(Mutex::new(writer));

    // The reader thread knows the running job first, so a cancel right after a transcribe
    // request is never lost.
    let current = Arc::new(AtomicU64::new(0));
    let cancel = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel::<Option<ToSpeech>>();
    {
        let (current, cancel) = (current.clone(), cancel.clone());
        std::thread::Builder::new()
            .name("speech-ipc".into())
            .spawn(move || loop {
                match read_frame::<ToSpeech>(&mut reader) {
                    Ok(ToSpeech::Cancel { id }) => {
                        if current.load(Ordering::SeqCst) == id {
                            cancel.store(true, Ordering::SeqCst);
                        }
                    }
                    Ok(msg) => {
                        if let ToSpeech::Transcribe(r) = &msg {
                            current.store(r.id, Ordering::SeqCst);
                            cancel.store(false, Ordering::SeqCst);
                        }
                        if tx.send(Some(msg)).is_err() {
                            return;
                        }
                    }
                    Err(e) => {
                        if !matches!(e, IpcError::Closed) {
                            log::error!("speech worker IPC read failed: {e}");
                        }
                        let _ = tx.send(None);
                        return;
                    }
                }
            })
            .map_err(IpcError::Io)?;
    }
    // civiad resolves `threads = 0` (all cores) before sending the load request.
    let threads = spec.threads.max(1) as usize;
    while let Ok(Some(msg)) = rx.recv() {
        match msg {
            ToSpeech::Transcribe(req) => {
                let id = req.id;
                let job = Job {
                    ctx: &ctx,
                    threads,
                    out: &out,
                    cancel: &cancel,
                    req,
                };
                let reply = match job.run() {
                    Ok((language, duration_secs, silent_secs)) => FromSpeech::Finished {
                        id,
                        language,
                        duration_secs,
                        silent_secs,
                    },
                    Err(SpeechError::Ipc(e)) => return Err(e.into()),
                    Err(e) => {
                        log::info!("transcription {id} ended: {e}");
                        FromSpeech::Failed {
                            id,
                            kind: e.failure(),
                            message: e.detail(),
                        }
                    }
                };
                send(&out, &reply)?;
            }
            ToSpeech::Shutdown => return Ok(()),
            ToSpeech::Hello { .. } | ToSpeech::Load(_) | ToSpeech::Cancel { .. } => {
                log::warn!("speech worker: unexpected message ignored");
            }
        }
    }
    Ok(())
}

/// Checks the file (whisper.cpp magic, SHA-256) and loads it; a refusal is reported to
/// civiad.
fn load(
    spec: &SpeechLoadSpec,
    link: &mut Link<SpeechProtocol>,
) -> Result<(WhisperContext, SpeechModelInfo), StartError> {
    let size_bytes = std::fs::metadata(&spec.path).map(|m| m.len()).unwrap_or(0);
    let sha256 = link.verify_model(spec, |magic| {
        (u32::from_le_bytes(magic) == 0x6767_6d6c)
            .then_some(())
            .ok_or_else(|| format!("{} is not a whisper.cpp (ggml) model file", spec.path))
    })?;
    whisper_rs::install_logging_hooks();
    let gpu = spec.gpu && cfg!(feature = "cuda");
    let mut params = WhisperContextParameters::default();
    params.use_gpu(gpu);
    let ctx = WhisperContext::new_with_params(&spec.path, params)
        .map_err(|e| link.refuse(format!("whisper.cpp could not load {}: {e}", spec.path)))?;
    let kind = ctx
        .model_type_readable_str_lossy()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| "unknown".into());
    let info = SpeechModelInfo {
        sha256,
        size_bytes,
        kind,
        multilingual: ctx.is_multilingual(),
        gpu,
    };
    Ok((ctx, info))
}

struct Job<'a> {
    ctx: &'a WhisperContext,
    threads: usize,
    out: &'a Out,
    cancel: &'a Arc<AtomicBool>,
    req: TranscribeRequest,
}

/// What one job reports at the end: language, duration, silence skipped.
type Outcome = (String, f64, f64);

impl Job<'_> {
    fn run(&self) -> Result<Outcome, SpeechError> {
        let req = &self.req;
        if let Some(lang) = &req.language {
            if whisper_rs::get_lang_id(lang).is_none() {
                return Err(SpeechError::InvalidRequest(format!(
                    "language {lang:?} is unknown to the transcription model"
                )));
            }
        }
        let mut stream =
            AudioStream::open(Path::new(&req.audio_path), req.filename_hint.as_deref())?;
        let format = stream.format().clone();
        send(
            self.out,
            &FromSpeech::Probed {
                id: req.id,
                format: format.clone(),
            },
        )?;
        let max = req.max_duration_secs;
        if format.duration_secs.is_some_and(|d| d > max as f64) {
            return Err(SpeechError::TooLong(max));
        }
        let max_samples = usize::try_from(max)
            .unwrap_or(usize::MAX)
            .saturating_mul(RATE);
        let window = (req.window_secs.max(30) as usize) * RATE;
        let mut state = self
            .ctx
            .create_state()
            .map_err(|e| SpeechError::Internal(format!("whisper state: {e}")))?;
        let mut buf: Vec<f32> = Vec::with_capacity(window + RATE);
        let mut offset = 0usize;
        let mut silent = 0usize;
        let mut language = req.language.clone();
        loop {
            if self.cancel.load(Ordering::SeqCst) {
                return Err(SpeechError::Cancelled);
            }
            let more = stream.next_chunk(&mut buf)?;
            if offset + buf.len() > max_samples {
                return Err(SpeechError::TooLong(max));
            }
            while buf.len() >= window || (!more && !buf.is_empty()) {
                let cut = if buf.len() >= window {
                    cut_point(&buf[..window])
                } else {
                    buf.len()
                };
                let part = &buf[..cut];
                if is_silent(part) {
                    silent += cut;
                } else {
                    let lang = self.window(&mut state, part, offset, format.duration_secs)?;
                    language.get_or_insert(lang);
                }
                offset += cut;
                buf.drain(..cut);
                send(
                    self.out,
                    &FromSpeech::Progress {
                        id: req.id,
                        processed_secs: offset as f64 / RATE as f64,
                        duration_secs: format.duration_secs,
                    },
                )?;
            }
            if !more {
                break;
            }
        }
        if offset == 0 {
            return Err(civia_audio::AudioError::Empty.into());
        }
        let language = language.unwrap_or_else(|| "fr".into());
        Ok((
            language,
            offset as f64 / RATE as f64,
            silent as f64 / RATE as f64,
        ))
    }

    /// Transcribes one window starting `offset` samples into the recording; returns the
    /// language whisper used.
    fn window(
        &self,
        state: &mut whisper_rs::WhisperState,
        samples: &[f32],
        offset: usize,
        duration: Option<f64>,
    ) -> Result<String, SpeechError> {
        let req = &self.req;
        let mut padded;
        let samples = if samples.len() < MIN_WINDOW {
            padded = samples.to_vec();
            padded.resize(MIN_WINDOW, 0.0);
            &padded[..]
        } else {
            samples
        };
        // (whisper-rs's FullParams never frees its C strings and progress closure: a few
        // hundred bytes per window, bounded by the recording's length.)
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.threads).unwrap_or(1).max(1));
        params.set_language(Some(req.language.as_deref().unwrap_or("auto")));
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_special(false);
        params.set_print_timestamps(false);
        params.set_temperature(req.temperature);
        // whisper-rs panics on an interior NUL (civiad refuses control characters already).
        let prompt = req.prompt.as_deref().map(|p| p.replace('\0', ""));
        if let Some(p) = prompt.as_deref().filter(|p| !p.is_empty()) {
            params.set_initial_prompt(p);
        }
        let start = offset as f64 / RATE as f64;
        let len = samples.len() as f64 / RATE as f64;
        let (out, id) = (self.out.clone(), req.id);
        let mut last = 0;
        params.set_progress_callback_safe(move |pct: i32| {
            if pct >= last + 10 && pct < 100 {
                last = pct;
                let _ = send(
                    &out,
                    &FromSpeech::Progress {
                        id,
                        processed_secs: start + len * f64::from(pct) / 100.0,
                        duration_secs: duration,
                    },
                );
            }
        });
        // whisper-rs 0.16's `set_abort_callback_safe` casts its boxed closure to the wrong
        // type in its trampoline (undefined behaviour): the raw callback is used instead.
        // SAFETY: `abort_flag` points into the Arc held by `self.cancel`, which outlives this
        // call to `full` (the job borrows it); the callback only reads the atomic.
        unsafe {
            params.set_abort_callback(Some(abort_flag));
            params.set_abort_callback_user_data(Arc::as_ptr(self.cancel) as *mut std::ffi::c_void);
        }
        let result = state.full(params, samples);
        if self.cancel.load(Ordering::SeqCst) {
            return Err(SpeechError::Cancelled);
        }
        result.map_err(|e| SpeechError::Internal(format!("whisper : {e}")))?;
        let eot = self.ctx.token_eot();
        for i in 0..state.full_n_segments() {
            let Some(seg) = state.get_segment(i) else {
                continue;
            };
            let text = seg
                .to_str_lossy()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            let mut tokens = Vec::new();
            let mut logprob = 0.0f64;
            for j in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(j) else {
                    continue;
                };
                let data = tok.token_data();
                if data.id >= eot {
                    continue;
                }
                tokens.push(data.id);
                logprob += f64::from(data.plog);
            }
            let avg_logprob = if tokens.is_empty() {
                0.0
            } else {
                logprob / tokens.len() as f64
            };
            let no_speech_prob = f64::from(seg.no_speech_probability());
            if text.trim().is_empty()
                || (no_speech_prob > NO_SPEECH_PROB && avg_logprob < NO_SPEECH_LOGPROB)
            {
                continue;
            }
            // Timestamps are in centiseconds from the window's start; clamp to the window.
            let t = |cs: i64| start + (cs.max(0) as f64 / 100.0).min(len);
            send(
                self.out,
                &FromSpeech::Segment {
                    id: req.id,
                    segment: Segment {
                        start: t(seg.start_timestamp()),
                        end: t(seg.end_timestamp()),
                        text,
                        avg_logprob,
                        no_speech_prob,
                        tokens,
                    },
                },
            )?;
        }
        let lang_id = state.full_lang_id_from_state();
        Ok(whisper_rs::get_lang_str(lang_id)
            .unwrap_or("fr")
            .to_string())
    }
}

/// whisper.cpp's abort callback: true once the job is cancelled.
unsafe extern "C" fn abort_flag(user_data: *mut std::ffi::c_void) -> bool {
    // SAFETY: user_data is the AtomicBool set up in `Job::window`, alive during `full`.
    let flag = unsafe { &*(user_data as *const AtomicBool) };
    flag.load(Ordering::SeqCst)
}
