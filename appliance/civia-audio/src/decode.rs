//! Opening a recording and decoding it, packet by packet, into 16 kHz mono samples.
//!
//! symphonia parses the containers (WAV, MP3, OGG, FLAC, MP4/M4A) and decodes PCM, ADPCM,
//! MP3, Vorbis, FLAC and AAC-LC in Rust; Opus goes through libopus (symphonia has no Opus
//! decoder of its own). WebM/Matroska and ALAC are left out (less parser surface; meeting
//! recorders produce the formats above). Everything here treats the file as hostile: sizes are bounded
//! before allocating, decoder panics are caught by the caller.

use crate::resample::{Resampler, TARGET_RATE};
use crate::AudioError;
use std::io::{Read, Seek};
use std::path::Path;
use std::sync::OnceLock;
use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{CodecRegistry, Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Largest frame count one decoded packet may announce (10 s at 384 kHz).
const MAX_PACKET_FRAMES: u64 = 3_840_000;
/// Damaged packets tolerated (skipped) before the file is called corrupt.
const MAX_BAD_PACKETS: u32 = 32;

/// What a recording is, from its headers: the IPC crate's type, which the speech worker
/// reports to civiad as is (one definition; `civia-ipc` is the lower layer).
pub use civia_ipc::speech::AudioFormat;

fn codecs() -> &'static CodecRegistry {
    static REGISTRY: OnceLock<CodecRegistry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut r = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut r);
        r.register_all::<symphonia_adapter_libopus::OpusDecoder>();
        r
    })
}

/// An open recording, yielding 16 kHz mono samples.
pub struct AudioStream {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    resampler: Resampler,
    format: AudioFormat,
    bad_packets: u32,
    ended: bool,
}

fn unsupported(what: impl std::fmt::Display) -> AudioError {
    AudioError::Unsupported(what.to_string())
}

impl AudioStream {
    /// Opens and probes `path`; `hint` is the client's file name (its extension helps).
    pub fn open(path: &Path, hint: Option<&str>) -> Result<Self, AudioError> {
        let mut file = std::fs::File::open(path).map_err(|e| AudioError::Io(e.to_string()))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
            return Err(AudioError::Empty);
        }
        check_mp4(&mut file)?;
        guarded(|| Self::probe(Box::new(file), hint))
    }

    /// Like [`AudioStream::open`], from bytes in memory.
    pub fn from_bytes(bytes: Vec<u8>, hint: Option<&str>) -> Result<Self, AudioError> {
        if bytes.is_empty() {
            return Err(AudioError::Empty);
        }
        let mut cursor = std::io::Cursor::new(bytes);
        check_mp4(&mut cursor)?;
        let bytes = cursor.into_inner();
        guarded(|| Self::probe(Box::new(std::io::Cursor::new(bytes)), hint))
    }

    fn probe(source: Box<dyn MediaSource>, hint: Option<&str>) -> Result<Self, AudioError> {
        let mss = MediaSourceStream::new(source, Default::default());
        let mut h = Hint::new();
        if let Some(ext) = hint
            .and_then(|n| Path::new(n).extension())
            .and_then(|e| e.to_str())
        {
            h.with_extension(&ext.to_ascii_lowercase());
        }
        let probed = symphonia::default::get_probe()
            .format(
                &h,
                mss,
                &FormatOptions {
                    enable_gapless: true,
                    ..Default::default()
                },
                &MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymError::Unsupported(_) => unsupported("unknown audio format"),
                SymError::IoError(_) => AudioError::Corrupt("truncated file".into()),
                other => {
                    log::debug!("probe failed: {other}");
                    AudioError::Corrupt("unreadable header".into())
                }
            })?;
        let reader = probed.format;
        let track = reader
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| unsupported("no audio track"))?;
        let params = &track.codec_params;
        let codec = codecs()
            .get_codec(params.codec)
            .map(|d| d.short_name.to_string())
            .ok_or_else(|| unsupported("unsupported audio codec"))?;
        let sample_rate = params
            .sample_rate
            .filter(|r| (1_000..=384_000).contains(r))
            .ok_or_else(|| AudioError::Corrupt("invalid sample rate".into()))?;
        let channels = params.channels.map(|c| c.count() as u32).unwrap_or(1);
        if !(1..=32).contains(&channels) {
            return Err(AudioError::Corrupt("invalid channel count".into()));
        }
        let duration_secs = params
            .n_frames
            .map(|n| n as f64 / f64::from(sample_rate))
            .filter(|d| d.is_finite());
        let decoder = codecs()
            .make(params, &DecoderOptions::default())
            .map_err(|e| {
                log::debug!("decoder for {codec} refused the stream: {e}");
                unsupported(format!("unsupported variant of the {codec} codec"))
            })?;
        let track_id = track.id;
        let container = hint
            .and_then(|n| Path::new(n).extension())
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .unwrap_or_else(|| "unknown".into());
        Ok(Self {
            reader,
            decoder,
            track_id,
            resampler: Resampler::new(sample_rate),
            format: AudioFormat {
                container,
                codec,
                sample_rate,
                channels,
                duration_secs,
            },
            bad_packets: 0,
            ended: false,
        })
    }

    pub fn format(&self) -> &AudioFormat {
        &self.format
    }

    /// Appends the next decoded samples (16 kHz mono) to `out`; false at the end.
    pub fn next_chunk(&mut self, out: &mut Vec<f32>) -> Result<bool, AudioError> {
        let r = guarded(|| self.next_inner(out));
        if r.is_err() {
            self.ended = true;
        }
        r
    }

    fn next_inner(&mut self, out: &mut Vec<f32>) -> Result<bool, AudioError> {
        if self.ended {
            return Ok(false);
        }
        loop {
            let packet = match self.reader.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end(out);
                }
                Err(SymError::ResetRequired) => return self.end(out),
                Err(SymError::IoError(e)) => return Err(AudioError::Io(e.to_string())),
                Err(e) => {
                    self.bad_packet(&e)?;
                    continue;
                }
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoded = match self.decoder.decode(&packet) {
                Ok(d) => d,
                Err(SymError::DecodeError(e)) => {
                    self.bad_packet(&e)?;
                    continue;
                }
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    return self.end(out);
                }
                Err(e) => {
                    log::debug!("decoding stopped: {e}");
                    return Err(AudioError::Corrupt("unreadable audio data".into()));
                }
            };
            let spec = *decoded.spec();
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            if decoded.capacity() as u64 > MAX_PACKET_FRAMES {
                return Err(AudioError::Corrupt("oversized audio packet".into()));
            }
            let mut buf = SampleBuffer::<f32>::new(decoded.capacity() as u64, spec);
            buf.copy_interleaved_ref(decoded);
            let ch = spec.channels.count().max(1);
            let mono: Vec<f32> = buf
                .samples()
                .chunks(ch)
                .map(|f| {
                    let s = f.iter().sum::<f32>() / ch as f32;
                    if s.is_finite() {
                        s.clamp(-1.0, 1.0)
                    } else {
                        0.0
                    }
                })
                .collect();
            self.resampler.push(&mono, out);
            return Ok(true);
        }
    }

    fn bad_packet(&mut self, e: &dyn std::fmt::Display) -> Result<(), AudioError> {
        self.bad_packets += 1;
        log::debug!("skipping a damaged packet: {e}");
        if self.bad_packets > MAX_BAD_PACKETS {
            return Err(AudioError::Corrupt(format!(
                "more than {MAX_BAD_PACKETS} unreadable audio packets"
            )));
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<f32>) -> Result<bool, AudioError> {
        self.ended = true;
        self.resampler.finish(out);
        Ok(true)
    }
}

/// MP4 files have their sample tables checked before symphonia trusts their counts, wherever
/// in the first megabyte the probe would find their `ftyp`.
fn check_mp4<R: Read + Seek>(r: &mut R) -> Result<(), AudioError> {
    let mut head = Vec::with_capacity(crate::mp4::PROBE_BYTES);
    let read = r
        .by_ref()
        .take(crate::mp4::PROBE_BYTES as u64)
        .read_to_end(&mut head);
    read.map_err(|e| AudioError::Io(e.to_string()))?;
    if let Some(start) = crate::mp4::mp4_start(&head) {
        crate::mp4::check(r, start).map_err(AudioError::Corrupt)?;
    }
    r.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| AudioError::Io(e.to_string()))?;
    Ok(())
}

/// Runs parser code, turning a panic on a hostile file (symphonia asserts on some
/// impossible headers) into a clear error.
fn guarded<T>(f: impl FnOnce() -> Result<T, AudioError>) -> Result<T, AudioError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f))
        .unwrap_or_else(|_| Err(AudioError::Corrupt("inconsistent header or data".into())))
}

/// Samples per second of what [`AudioStream`] yields.
pub const RATE: usize = TARGET_RATE as usize;
