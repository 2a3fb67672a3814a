//! `/v1/audio/transcriptions`: the form's parameters, and the answer in OpenAI's formats
//! (json, text, srt, vtt, verbose_json) or as stream events.

use crate::Error;
use civia_ipc::speech::Segment;
use serde_json::{json, Value};
use std::collections::HashMap;

/// Longest `prompt` (whisper keeps about 224 tokens of it anyway).
pub const MAX_PROMPT_CHARS: usize = 2000;
/// The name OpenAI's tools default to; accepted for the box's speech model.
pub const OPENAI_ALIAS: &str = "whisper-1";

/// The validated parameters of a transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// `None`: detect the language.
    pub language: Option<String>,
    pub prompt: Option<String>,
    pub format: Format,
    pub temperature: f32,
    pub stream: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
    Srt,
    Vtt,
    VerboseJson,
}

impl Format {
    /// `response_format` (absent or empty: json).
    pub fn parse(s: Option<&str>) -> Result<Self, Error> {
        Ok(match s.map(str::trim).unwrap_or("json") {
            "json" | "" => Format::Json,
            "text" => Format::Text,
            "srt" => Format::Srt,
            "vtt" => Format::Vtt,
            "verbose_json" => Format::VerboseJson,
            other => {
                return Err(Error::invalid(
                    "response_format",
                    format!(
                        "unknown `response_format` {other:?}: json, text, srt, vtt or verbose_json"
                    ),
                ))
            }
        })
    }
}

impl Params {
    /// The form's text fields (a repeated field's values joined by commas), for the box's
    /// speech model `speech_id` and its configured `default_language`.
    pub fn parse(
        f: &HashMap<String, String>,
        speech_id: &str,
        default_language: &str,
    ) -> Result<Self, Error> {
        let model = f
            .get("model")
            .map(|m| m.trim().to_string())
            .unwrap_or_default();
        if model.is_empty() {
            return Err(Error::invalid(
                "model",
                format!("`model` is required (the transcription model: `{speech_id}`)"),
            ));
        }
        if model != speech_id && model != OPENAI_ALIAS {
            return Err(Error::model_not_found(&model, speech_id));
        }
        let language = match f.get("language").map(|l| l.trim().to_ascii_lowercase()) {
            None => Some(default_language.to_string()),
            Some(l) if l.is_empty() => Some(default_language.to_string()),
            Some(l) => Some(l),
        }
        .filter(|l| l != "auto");
        if let Some(l) = &language {
            if l.len() != 2 || !l.bytes().all(|b| b.is_ascii_lowercase()) {
                return Err(Error::invalid(
                    "language",
                    "`language` is a two-letter ISO 639-1 code (fr, en...) or `auto`",
                ));
            }
        }
        let prompt = f.get("prompt").filter(|p| !p.trim().is_empty()).cloned();
        if prompt
            .as_ref()
            .is_some_and(|p| p.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
        {
            return Err(Error::invalid(
                "prompt",
                "`prompt` holds control characters",
            ));
        }
        if prompt
            .as_ref()
            .is_some_and(|p| p.chars().count() > MAX_PROMPT_CHARS)
        {
            return Err(Error::invalid(
                "prompt",
                format!("`prompt` is longer than {MAX_PROMPT_CHARS} characters"),
            ));
        }
        let format = Format::parse(f.get("response_format").map(String::as_str))?;
        let temperature = match f.get("temperature").map(|t| t.trim()) {
            None | Some("") => 0.0,
            Some(t) => t
                .parse::<f32>()
                .ok()
                .filter(|t| t.is_finite() && (0.0..=1.0).contains(t))
                .ok_or_else(|| {
                    Error::invalid("temperature", "`temperature` is a number between 0 and 1")
                })?,
        };
        let stream = match f.get("stream").map(|s| s.trim()) {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(_) => return Err(Error::invalid("stream", "`stream` is true or false")),
        };
        for (key, value) in f {
            if key.starts_with("timestamp_granularities")
                && value.split(',').any(|v| v.trim() == "word")
            {
                return Err(Error::unsupported(
                    key.as_str(),
                    "word timestamps are not available: only segments are timestamped",
                ));
            }
        }
        if stream && format != Format::Json && format != Format::Text {
            return Err(Error::unsupported(
                "stream",
                "`stream` answers with events: use response_format json or text",
            ));
        }
        Ok(Params {
            language,
            prompt,
            format,
            temperature,
            stream,
        })
    }
}

/// A finished transcription.
#[derive(Debug, Clone, PartialEq)]
pub struct Transcript {
    /// The request's temperature (whisper's fallback is not reported).
    pub temperature: f32,
    pub text: String,
    pub segments: Vec<Segment>,
    pub language: String,
    pub duration_secs: f64,
    /// The recording was deleted when the transcription ended.
    pub audio_deleted: bool,
}

impl Transcript {
    /// OpenAI's `usage` of a transcription: whole seconds of audio.
    pub fn usage(&self) -> Value {
        json!({ "type": "duration", "seconds": self.duration_secs.ceil() as u64 })
    }

    /// The `civia` object: the AI marking with the transcription's facts.
    pub fn civia(&self, mut marking: Value) -> Value {
        marking["language"] = json!(self.language);
        marking["duration_seconds"] = json!(self.duration_secs);
        marking["audio_deleted"] = json!(self.audio_deleted);
        marking
    }
}

/// The transcript's text: the segments' trimmed texts, separated by spaces.
pub fn join_text(segments: &[Segment]) -> String {
    segments
        .iter()
        .map(|s| s.text.trim())
        .filter(|t| !t.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// OpenAI's segment objects (the request's temperature: whisper's fallback is not reported).
pub fn segments_json(segments: &[Segment], temperature: f32) -> Value {
    Value::Array(
        segments
            .iter()
            .enumerate()
            .map(|(i, s)| {
                json!({
                    "id": i,
                    "seek": (s.start * 100.0).round() as u64,
                    "start": s.start,
                    "end": s.end,
                    "text": s.text,
                    "tokens": s.tokens,
                    "temperature": temperature,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                })
            })
            .collect(),
    )
}

/// `hh:mm:ss,mmm` (SRT) or `hh:mm:ss.mmm` (WebVTT).
pub fn timestamp(secs: f64, sep: char) -> String {
    let ms = (secs.max(0.0) * 1000.0).round() as u64;
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

/// SRT or (`vtt`) WebVTT subtitles, one cue per segment.
pub fn subtitles(segments: &[Segment], vtt: bool) -> String {
    let mut out = String::new();
    if vtt {
        out.push_str("WEBVTT\n\n");
    }
    let sep = if vtt { '.' } else { ',' };
    for (i, s) in segments.iter().enumerate() {
        if !vtt {
            out.push_str(&format!("{}\n", i + 1));
        }
        // A cue's text never holds a blank line (it would end the cue) or "-->".
        let text = s.text.trim().replace("-->", "→").replace('\n', " ");
        out.push_str(&format!(
            "{} --> {}\n{text}\n\n",
            timestamp(s.start, sep),
            timestamp(s.end, sep)
        ));
    }
    out
}

/// An answer without `stream`: a JSON object, or text of a content type.
#[derive(Debug, Clone, PartialEq)]
pub enum Rendered {
    Json(Value),
    Text {
        content_type: &'static str,
        body: String,
    },
}

/// The transcript in the requested format; `marking` is the AI marking (AI Act art. 50).
pub fn render(format: Format, done: &Transcript, marking: Value) -> Rendered {
    let text = |content_type, body| Rendered::Text { content_type, body };
    match format {
        Format::Json => Rendered::Json(json!({
            "text": done.text,
            "usage": done.usage(),
            "civia": done.civia(marking),
        })),
        Format::VerboseJson => Rendered::Json(json!({
            "task": "transcribe",
            "language": done.language,
            "duration": done.duration_secs,
            "text": done.text,
            "segments": segments_json(&done.segments, done.temperature),
            "usage": done.usage(),
            "civia": done.civia(marking),
        })),
        Format::Text => text("text/plain; charset=utf-8", format!("{}\n", done.text)),
        Format::Srt => text(
            "application/x-subrip; charset=utf-8",
            subtitles(&done.segments, false),
        ),
        Format::Vtt => text("text/vtt; charset=utf-8", subtitles(&done.segments, true)),
    }
}

/// A `transcript.text.delta` event for progress alone (empty delta).
pub fn progress_event(processed: f64, duration: Option<f64>) -> Value {
    json!({ "type": "transcript.text.delta", "delta": "",
            "civia": { "progress": { "processed_seconds": processed,
                                     "duration_seconds": duration } } })
}

/// A `transcript.text.delta` event for a new segment.
pub fn segment_event(s: &Segment, processed: f64, duration: Option<f64>) -> Value {
    json!({ "type": "transcript.text.delta", "delta": format!("{} ", s.text.trim()),
            "civia": { "progress": { "processed_seconds": processed,
                                     "duration_seconds": duration },
                       "segment": { "start": s.start, "end": s.end, "text": s.text } } })
}

/// The `transcript.text.done` event: the whole text, and the segments in `civia`.
pub fn done_event(done: &Transcript, marking: Value) -> Value {
    let mut civia = done.civia(marking);
    civia["segments"] = segments_json(&done.segments, done.temperature);
    json!({ "type": "transcript.text.done", "text": done.text,
            "usage": done.usage(), "civia": civia })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, text: &str) -> Segment {
        Segment {
            start,
            end,
            text: text.into(),
            avg_logprob: -0.2,
            no_speech_prob: 0.0,
            tokens: vec![],
        }
    }

    #[test]
    fn subtitles_follow_srt_and_webvtt() {
        let s = [
            seg(0.0, 1.5, " Bonjour."),
            seg(3661.25, 3662.0, " a --> b\n\nc"),
        ];
        assert_eq!(
            subtitles(&s, false),
            "1\n00:00:00,000 --> 00:00:01,500\nBonjour.\n\n2\n01:01:01,250 --> 01:01:02,000\na → b  c\n\n"
        );
        let vtt = subtitles(&s, true);
        assert!(vtt.starts_with("WEBVTT\n\n00:00:00.000 --> 00:00:01.500\nBonjour.\n\n"));
        assert_eq!(join_text(&s), "Bonjour. a --> b\n\nc");
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn refused(pairs: &[(&str, &str)]) -> Error {
        match Params::parse(&form(pairs), "whisper-large-v3", "fr") {
            Ok(p) => panic!("accepted: {p:?}"),
            Err(e) => e,
        }
    }

    #[test]
    fn params_defaults_and_alias() {
        let p = Params::parse(&form(&[("model", "whisper-1")]), "whisper-large-v3", "fr")
            .expect("valid");
        assert_eq!(
            p,
            Params {
                language: Some("fr".into()),
                prompt: None,
                format: Format::Json,
                temperature: 0.0,
                stream: false,
            }
        );
        let p = Params::parse(
            &form(&[
                ("model", " whisper-large-v3 "),
                ("language", "AUTO"),
                ("response_format", "text"),
                ("stream", "true"),
                ("temperature", "0.5"),
                ("timestamp_granularities[]", "segment"),
            ]),
            "whisper-large-v3",
            "fr",
        )
        .expect("valid");
        assert_eq!(p.language, None);
        assert_eq!(
            (p.format, p.stream, p.temperature),
            (Format::Text, true, 0.5)
        );
    }

    #[test]
    fn params_refusals_name_the_field() {
        let e = refused(&[]);
        assert_eq!((e.code(), e.param()), ("invalid_value", "model"));
        let e = refused(&[("model", "gpt-4o-transcribe")]);
        assert_eq!((e.status().as_u16(), e.code()), (404, "model_not_found"));
        assert_eq!(
            refused(&[("model", "whisper-1"), ("language", "fra")]).param(),
            "language"
        );
        assert_eq!(
            refused(&[("model", "whisper-1"), ("prompt", "a\u{7}b")]).param(),
            "prompt"
        );
        let long = "é".repeat(MAX_PROMPT_CHARS + 1);
        assert_eq!(
            refused(&[("model", "whisper-1"), ("prompt", &long)]).param(),
            "prompt"
        );
        let e = refused(&[("model", "whisper-1"), ("response_format", "xml")]);
        assert_eq!(
            e.to_string(),
            "unknown `response_format` \"xml\": json, text, srt, vtt or verbose_json"
        );
        for t in ["1.5", "-0.1", "NaN", "chaud"] {
            assert_eq!(
                refused(&[("model", "whisper-1"), ("temperature", t)]).param(),
                "temperature"
            );
        }
        assert_eq!(
            refused(&[("model", "whisper-1"), ("stream", "yes")]).param(),
            "stream"
        );
        let e = refused(&[
            ("model", "whisper-1"),
            ("timestamp_granularities[]", "segment,word"),
        ]);
        assert_eq!(
            (e.code(), e.param()),
            ("unsupported_parameter", "timestamp_granularities[]")
        );
        let e = refused(&[
            ("model", "whisper-1"),
            ("stream", "true"),
            ("response_format", "srt"),
        ]);
        assert_eq!((e.code(), e.param()), ("unsupported_parameter", "stream"));
    }

    #[test]
    fn renders_each_format() {
        let done = Transcript {
            temperature: 0.0,
            text: "Bonjour.".into(),
            segments: vec![seg(0.0, 1.5, " Bonjour.")],
            language: "fr".into(),
            duration_secs: 1.2,
            audio_deleted: true,
        };
        let marking = json!({"ai_generated": true});
        let Rendered::Json(v) = render(Format::Json, &done, marking.clone()) else {
            panic!("json expected")
        };
        assert_eq!(v["usage"], json!({"type": "duration", "seconds": 2}));
        assert_eq!(v["civia"]["audio_deleted"], json!(true));
        let Rendered::Json(v) = render(Format::VerboseJson, &done, marking.clone()) else {
            panic!("json expected")
        };
        assert_eq!(v["segments"][0]["seek"], json!(0));
        assert_eq!(
            render(Format::Text, &done, marking.clone()),
            Rendered::Text {
                content_type: "text/plain; charset=utf-8",
                body: "Bonjour.\n".into()
            }
        );
        let d = done_event(&done, marking);
        assert_eq!(d["type"], "transcript.text.done");
        assert_eq!(d["civia"]["segments"][0]["text"], " Bonjour.");
    }
}
