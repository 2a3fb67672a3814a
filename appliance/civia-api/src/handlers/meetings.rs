//! `POST /v1/meetings/minutes`: a meeting transcript → structured minutes (« compte rendu »).
//!
//! Map-reduce with the language model: the transcript is cut into parts that fit the context
//! window, each part becomes notes (subjects, named people, decisions, actions), the notes are
//! condensed until they fit, then each section of the minutes is written from the notes on
//! its own (so the structure is the box's, not the model's). Progress is streamed as events.
//! The prompts forbid describing emotions, tone or personality (AI Act art. 5: no emotion
//! recognition or profiling of the participants).

use crate::body::{parse_json, read_body};
use crate::metering::UsageTicket;
use crate::{ApiError, ApiState};
use axum::body::Body;
use axum::extract::State;
use axum::http::Extensions;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use civia_ipc::{ChatMessage, SamplingParams, Usage};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Longest transcript accepted, in characters (a long council session is ~200 000).
const MAX_TRANSCRIPT_CHARS: usize = 1_000_000;
/// Characters per token assumed when sizing parts (conservative for French).
const CHARS_PER_TOKEN: usize = 2;
/// Room kept for the instructions around a part, in tokens.
const PROMPT_OVERHEAD_TOKENS: usize = 350;
const NOTES_MAX_TOKENS: u32 = 400;
const SECTION_MAX_TOKENS: u32 = 300;
/// Condensing passes at most (each divides the notes by about the number of parts).
const MAX_CONDENSE_PASSES: usize = 4;

const PERSONA: &str = "Tu es secrétaire de séance dans une mairie française. Tu travailles \
uniquement à partir du texte fourni, sans rien inventer. Tu ne décris jamais les émotions, le \
ton, l'attitude ni la personnalité des participants, et tu ne fais aucune supposition sur eux.";

/// The sections of the minutes, in order: key, French title, what to write.
pub(crate) const SECTIONS: [(&str, &str, &str); 5] = [
    ("subject", "Objet", "l'objet de la réunion, en une ou deux phrases"),
    (
        "participants",
        "Participants",
        "les personnes nommées dans la réunion, avec leur fonction si elle est dite, sans rien déduire d'autre à leur sujet",
    ),
    ("decisions", "Décisions", "les décisions prises, une par ligne"),
    (
        "actions",
        "Actions",
        "les actions à mener, une par ligne, chacune avec son responsable (« responsable : … ») et son échéance si elle est dite",
    ),
    (
        "next_steps",
        "Prochaines étapes",
        "les prochaines étapes et la date de la prochaine réunion si elle est dite",
    ),
];

#[derive(Deserialize)]
struct MinutesRequest {
    transcript: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    date: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    model: Option<String>,
}

/// What the pipeline reports as it goes.
enum Progress {
    Step {
        stage: &'static str,
        done: usize,
        total: usize,
    },
    Section {
        key: &'static str,
        title: &'static str,
        text: String,
    },
}

struct Minutes {
    markdown: String,
    sections: Vec<Value>,
    usage: Usage,
}

/// Cuts `text` into parts of at most `max` characters, at a sentence end or a space.
pub(crate) fn split(text: &str, max: usize) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        if rest.chars().count() <= max {
            parts.push(rest);
            break;
        }
        let limit = rest.char_indices().nth(max).map_or(rest.len(), |(i, _)| i);
        let head = &rest[..limit];
        let cut = head
            .rfind(['.', '?', '!', '\n'])
            .filter(|&i| i > limit / 2)
            .map(|i| i + 1)
            .or_else(|| head.rfind(' ').filter(|&i| i > 0))
            .unwrap_or(limit);
        parts.push(rest[..cut].trim());
        rest = rest[cut..].trim_start();
    }
    parts.retain(|p| !p.is_empty());
    parts
}

struct Pipeline {
    st: Arc<ApiState>,
    fairness: String,
    usage: Usage,
    /// Characters of text one prompt may carry.
    budget: usize,
}

impl Pipeline {
    /// Asks with `text` inside the prompt `make` builds; when the prompt overflows the context
    /// (the part was denser in tokens than estimated), the text is halved and asked again
    /// piece by piece, the answers joined.
    async fn ask_fitting(
        &mut self,
        text: &str,
        make: &(dyn Fn(&str) -> String + Sync),
        max_tokens: u32,
    ) -> Result<String, ApiError> {
        let mut pending = vec![text.to_string()];
        let mut answers = Vec::new();
        while let Some(t) = pending.pop() {
            match self.ask(make(&t), max_tokens).await {
                Ok(a) => answers.push(a),
                Err(e) if e.code == "context_length_exceeded" && t.chars().count() > 200 => {
                    let half = t.chars().count() / 2;
                    let parts = split(&t, half + half / 10);
                    // Popped in order: push the later parts first.
                    pending.extend(parts.into_iter().rev().map(String::from));
                }
                Err(e) => return Err(e),
            }
        }
        Ok(answers.join("\n"))
    }

    async fn ask(&mut self, user: String, max_tokens: u32) -> Result<String, ApiError> {
        let messages = vec![
            ChatMessage {
                role: "system".into(),
                content: PERSONA.into(),
            },
            ChatMessage {
                role: "user".into(),
                content: user,
            },
        ];
        let params = SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            seed: None,
            max_tokens: max_tokens.min(self.st.limits.max_tokens),
            stop: Vec::new(),
            // Small models loop on greedy decoding; a mild penalty keeps drafts readable.
            frequency_penalty: 0.3,
            presence_penalty: 0.0,
        };
        let prompt = crate::generation::with_system_prompt(&self.st, messages);
        let generation = self
            .st
            .supervisor
            .generate(prompt, params, &self.fairness)?;
        let c = crate::generation::collect(generation, self.st.leak_guard.as_deref()).await?;
        self.usage.prompt_tokens += c.usage.prompt_tokens;
        self.usage.completion_tokens += c.usage.completion_tokens;
        Ok(c.text.trim().to_string())
    }

    /// One section from the notes; when they overflow the context, from their first part
    /// that fits (the notes are already condensed: what is cut is the least important).
    async fn section(
        &mut self,
        notes: &str,
        make: &(dyn Fn(&str) -> String + Sync),
    ) -> Result<String, ApiError> {
        let mut notes = notes.to_string();
        loop {
            match self.ask(make(&notes), SECTION_MAX_TOKENS).await {
                Err(e) if e.code == "context_length_exceeded" && notes.chars().count() > 200 => {
                    let keep = notes.chars().count() / 2;
                    notes = notes.chars().take(keep).collect();
                }
                other => return other,
            }
        }
    }

    async fn run(
        mut self,
        transcript: &str,
        title: Option<&str>,
        date: Option<&str>,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Result<Minutes, ApiError> {
        let parts = split(transcript, self.budget);
        let total = parts.len() + SECTIONS.len();
        let mut notes = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            let _ = progress.send(Progress::Step {
                stage: "notes",
                done: i,
                total: parts.len(),
            });
            let (k, n) = (i + 1, parts.len());
            let ask = move |part: &str| {
                format!(
                    "Extrait {k} sur {n} de la transcription d'une réunion :\n\n{part}\n\n\
                     Note en français, en liste à puces, ce que dit cet extrait : sujets \
                     abordés, personnes nommées (et leur fonction si elle est dite), \
                     décisions prises, actions à mener avec leur responsable et leur \
                     échéance. Seulement ce qui est dans l'extrait."
                )
            };
            let n = self.ask_fitting(part, &ask, NOTES_MAX_TOKENS).await?;
            notes.push(n);
        }
        let mut notes = notes.join("\n");
        for _ in 0..MAX_CONDENSE_PASSES {
            if notes.chars().count() <= self.budget {
                break;
            }
            let groups: Vec<String> = split(&notes, self.budget)
                .into_iter()
                .map(String::from)
                .collect();
            let mut condensed = Vec::with_capacity(groups.len());
            for (i, g) in groups.iter().enumerate() {
                let _ = progress.send(Progress::Step {
                    stage: "condense",
                    done: i,
                    total: groups.len(),
                });
                let ask = |g: &str| {
                    format!(
                        "Notes d'une réunion :\n\n{g}\n\nRegroupe ces notes en une liste à \
                         puces plus courte, sans perdre les décisions, les actions, leurs \
                         responsables ni les personnes nommées."
                    )
                };
                condensed.push(self.ask_fitting(g, &ask, NOTES_MAX_TOKENS).await?);
            }
            notes = condensed.join("\n");
        }
        let notes: String = notes.chars().take(self.budget).collect();
        let mut sections = Vec::with_capacity(SECTIONS.len());
        let mut markdown = format!(
            "# Compte rendu de réunion{}\n\n",
            title.map(|t| format!(" — {t}")).unwrap_or_default()
        );
        if let Some(d) = date {
            markdown.push_str(&format!("Date : {d}\n\n"));
        }
        markdown.push_str(
            "*Brouillon rédigé par l'IA à partir de la transcription automatique — à vérifier \
             et compléter avant toute diffusion.*\n\n",
        );
        for (i, (key, name, what)) in SECTIONS.iter().enumerate() {
            let _ = progress.send(Progress::Step {
                stage: "sections",
                done: i,
                total: SECTIONS.len(),
            });
            let ask = |notes: &str| {
                format!(
                    "Notes de la réunion :\n\n{notes}\n\nRédige uniquement la rubrique « \
                     {name} » du compte rendu : {what}. Réponds en français, sans titre, en \
                     quelques lignes ou une liste à puces. Si les notes ne le disent pas, écris \
                     « Non précisé »."
                )
            };
            let text = self.section(&notes, &ask).await?;
            let text = if text.is_empty() {
                "Non précisé".to_string()
            } else {
                text
            };
            markdown.push_str(&format!("## {name}\n\n{text}\n\n"));
            sections.push(json!({ "key": key, "title": name, "text": text }));
            let _ = progress.send(Progress::Section {
                key,
                title: name,
                text,
            });
        }
        let _ = progress.send(Progress::Step {
            stage: "sections",
            done: SECTIONS.len(),
            total: SECTIONS.len(),
        });
        log::info!(
            "minutes drafted: {} part(s), {} steps, {} + {} tokens",
            parts.len(),
            total,
            self.usage.prompt_tokens,
            self.usage.completion_tokens
        );
        Ok(Minutes {
            markdown,
            sections,
            usage: self.usage,
        })
    }
}

fn clean_line(v: Option<String>, param: &str) -> Result<Option<String>, ApiError> {
    match v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > 200 || s.chars().any(char::is_control) => {
            Err(ApiError::bad_request(
                format!("`{param}` : 200 caractères imprimables au plus."),
                Some(param.into()),
            ))
        }
        other => Ok(other),
    }
}

pub async fn minutes(
    State(st): State<Arc<ApiState>>,
    ext: Extensions,
    body: Body,
) -> Result<Response, ApiError> {
    let limit = st.limits.max_body_bytes.max(MAX_TRANSCRIPT_CHARS * 4);
    let body = read_body(body, limit).await?;
    if let Some(t) = ext.get::<Arc<UsageTicket>>() {
        t.set_prompt(&body);
    }
    let req: MinutesRequest = parse_json(&body)?;
    if let Some(m) = req.model.as_deref().filter(|m| *m != st.model_id) {
        return Err(ApiError::model_not_found(m, &st.model_id));
    }
    if let Some(p) = ext.get::<civia_auth::Principal>() {
        p.check_model(&st.model_id)?;
    }
    let transcript = req.transcript.trim().to_string();
    if transcript.is_empty() {
        return Err(ApiError::bad_request(
            "La transcription est vide.",
            Some("transcript".into()),
        ));
    }
    if transcript.chars().count() > MAX_TRANSCRIPT_CHARS {
        return Err(ApiError::bad_request(
            format!("La transcription dépasse {MAX_TRANSCRIPT_CHARS} caractères."),
            Some("transcript".into()),
        ));
    }
    let title = clean_line(req.title, "title")?;
    let date = clean_line(req.date, "date")?;
    let n_ctx = st
        .supervisor
        .status()
        .model
        .map_or(2048, |m| m.n_ctx as usize);
    let room = n_ctx
        .saturating_sub(PROMPT_OVERHEAD_TOKENS + SECTION_MAX_TOKENS.max(NOTES_MAX_TOKENS) as usize)
        .max(200);
    let pipeline = Pipeline {
        st: st.clone(),
        fairness: crate::extract::fairness_key(&ext),
        usage: Usage::default(),
        budget: room * CHARS_PER_TOKEN,
    };
    let ticket = ext.get::<Arc<UsageTicket>>().cloned();
    let pii = ticket.as_ref().map(|t| t.pii()).unwrap_or_default();
    let marking = crate::generation::civia_marking(&st, &pii, None);
    let (tx, mut rx) = mpsc::unbounded_channel();
    if req.stream != Some(true) {
        let m = pipeline
            .run(&transcript, title.as_deref(), date.as_deref(), &tx)
            .await?;
        if let Some(t) = &ticket {
            let sha = hex::encode(Sha256::digest(m.markdown.as_bytes()));
            t.finish(
                m.usage.prompt_tokens,
                m.usage.completion_tokens,
                200,
                Some(sha),
            )
            .await?;
        }
        return Ok(crate::generation::marked(
            Json(json!({
                "object": "meeting.minutes",
                "model": st.model_id,
                "minutes": m.markdown,
                "sections": m.sections,
                "usage": civia_openai::usage(&m.usage),
                "civia": marking,
            }))
            .into_response(),
            &pii,
            None,
        ));
    }
    let work = tokio::spawn(async move {
        pipeline
            .run(&transcript, title.as_deref(), date.as_deref(), &tx)
            .await
    });
    // Dropping the stream (client gone) aborts the pipeline and its generation.
    let abort = work.abort_handle();
    let events = async_stream::stream! {
        let guard = crate::metering::StreamGuard(ticket);
        let _abort = AbortOnDrop(abort);
        while let Some(p) = rx.recv().await {
            let data = match p {
                Progress::Step { stage, done, total } =>
                    json!({ "type": "minutes.progress", "stage": stage, "done": done, "total": total }),
                Progress::Section { key, title, text } =>
                    json!({ "type": "minutes.section", "key": key, "title": title, "text": text }),
            };
            yield Ok::<_, Infallible>(SseEvent::default().data(data.to_string()));
        }
        let result = match work.await {
            Ok(r) => r,
            Err(e) => Err(ApiError::internal(format!("minutes task failed: {e}"))),
        };
        match result {
            Ok(m) => {
                if let Some(t) = &guard.0 {
                    let sha = hex::encode(Sha256::digest(m.markdown.as_bytes()));
                    if let Err(e) = t.finish(m.usage.prompt_tokens, m.usage.completion_tokens, 200, Some(sha)).await {
                        yield Ok(SseEvent::default().data(e.body().to_string()));
                        return;
                    }
                }
                let data = json!({ "type": "minutes.done", "minutes": m.markdown,
                                   "sections": m.sections, "usage": civia_openai::usage(&m.usage),
                                   "civia": marking });
                yield Ok(SseEvent::default().data(data.to_string()));
                yield Ok(SseEvent::default().data("[DONE]"));
            }
            Err(e) => {
                log::warn!("minutes stream ended with an error: {}", e.message);
                if let Some(t) = &guard.0 {
                    let _ = t.finish(0, 0, e.status.as_u16(), None).await;
                }
                yield Ok(SseEvent::default().data(e.body().to_string()));
            }
        }
    };
    Ok(crate::generation::marked(
        Sse::new(events)
            .keep_alive(KeepAlive::default())
            .into_response(),
        &pii,
        None,
    ))
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn parts_end_at_sentences_and_cover_the_text() {
        let text = "Première phrase. Deuxième phrase un peu plus longue ! Troisième ? Quatrième.";
        let parts = split(text, 25);
        assert!(parts.iter().all(|p| p.chars().count() <= 25), "{parts:?}");
        assert_eq!(parts[0], "Première phrase.");
        let joined: String = parts.join(" ");
        assert_eq!(
            joined.split_whitespace().count(),
            text.split_whitespace().count()
        );
        // No sentence end, no space: cut at the limit, on a character boundary.
        let long = "é".repeat(50);
        let parts = split(&long, 20);
        assert_eq!(parts.len(), 3);
        assert!(split("   ", 10).is_empty());
    }
}
