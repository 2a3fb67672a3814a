//! Meeting minutes (« compte rendu ») drafted from a meeting transcript by the box's language
//! model: the map-reduce [`Pipeline`] behind `POST /v1/meetings/minutes`.
//!
//! The transcript is cut into parts that fit the context window ([`split`], [`budget`]), each
//! part becomes notes (subjects, named people, decisions, actions), the notes are condensed
//! until they fit, then each section of the minutes ([`SECTIONS`]) is written from the notes
//! on its own (so the structure is the box's, not the model's) as JSON held to the section's
//! schema (the model is asked with it: a grammar keeps the answer to it), which the page
//! renders as it is (lists, a table of actions) and [`section_markdown`] turns into the
//! draft's Markdown. Progress is reported as [`Progress`] events; the result is [`Minutes`]
//! (Markdown and sections with their data, token counts).
//!
//! Owns: the prompts ([`PERSONA`] and the notes, condense and section instructions), the
//! sections of the minutes and their order, the sizing constants, the splitting algorithm,
//! the recovery from a context overflow (halving the text, or truncating the notes of a
//! section), the Markdown of the draft and its "to be checked" notice.
//!
//! Must never:
//! - keep the transcript, the notes or the minutes beyond the call to [`Pipeline::run`], nor
//!   log any of their text (the log line holds counts only);
//! - describe, or ask the model to describe, the emotions, tone, attitude or personality of
//!   the participants (AI Act art. 5: no emotion recognition or profiling) — every prompt
//!   is sent with [`PERSONA`], which forbids it;
//! - talk to the model other than through the [`Model`] it is given (no HTTP, no IPC, no
//!   knowledge of the supervisor or of the API's errors beyond [`AskError`]).

use std::future::Future;

/// Characters per token assumed when sizing parts (conservative for French).
pub const CHARS_PER_TOKEN: usize = 2;
/// Room kept for the instructions around a part, in tokens.
pub const PROMPT_OVERHEAD_TOKENS: usize = 350;
/// Tokens asked at most for the notes of one part (or one condensed group).
pub const NOTES_MAX_TOKENS: u32 = 400;
/// Tokens asked at most for one section (its schema's lists and strings are bounded to fit).
pub const SECTION_MAX_TOKENS: u32 = 600;
/// Condensing passes at most (each divides the notes by about the number of parts).
pub const MAX_CONDENSE_PASSES: usize = 4;

/// The system prompt of every request.
pub const PERSONA: &str = "Tu es secrétaire de séance dans une mairie française. Tu travailles \
uniquement à partir du texte fourni, sans rien inventer. Tu ne décris jamais les émotions, le \
ton, l'attitude ni la personnalité des participants, et tu ne fais aucune supposition sur eux.";

/// The sections of the minutes, in order: key, French title, what to write, and the JSON
/// schema of the answer (lists and strings bounded, so that an answer fits
/// [`SECTION_MAX_TOKENS`]; `null` or an empty list when the notes do not say).
pub const SECTIONS: [(&str, &str, &str, &str); 5] = [
    (
        "subject",
        "Objet",
        "l'objet de la réunion, en une ou deux phrases",
        r#"{"type":"object","properties":{"objet":{"type":["string","null"],"maxLength":300}},"required":["objet"],"additionalProperties":false}"#,
    ),
    (
        "participants",
        "Participants",
        "les personnes nommées dans la réunion, avec leur fonction si elle est dite, sans rien déduire d'autre à leur sujet",
        r#"{"type":"object","properties":{"participants":{"type":"array","maxItems":15,"items":{"type":"object","properties":{"nom":{"type":"string","minLength":1,"maxLength":60},"fonction":{"type":["string","null"],"maxLength":60}},"required":["nom","fonction"],"additionalProperties":false}}},"required":["participants"],"additionalProperties":false}"#,
    ),
    (
        "decisions",
        "Décisions",
        "les décisions prises, une par élément de la liste",
        r#"{"type":"object","properties":{"decisions":{"type":"array","maxItems":10,"items":{"type":"string","minLength":1,"maxLength":160}}},"required":["decisions"],"additionalProperties":false}"#,
    ),
    (
        "actions",
        "Actions",
        "les actions à mener, chacune avec son responsable et son échéance s'ils sont dits",
        r#"{"type":"object","properties":{"actions":{"type":"array","maxItems":8,"items":{"type":"object","properties":{"action":{"type":"string","minLength":1,"maxLength":160},"responsable":{"type":["string","null"],"maxLength":60},"echeance":{"type":["string","null"],"maxLength":40}},"required":["action","responsable","echeance"],"additionalProperties":false}}},"required":["actions"],"additionalProperties":false}"#,
    ),
    (
        "next_steps",
        "Prochaines étapes",
        "les prochaines étapes et la date de la prochaine réunion si elle est dite",
        r#"{"type":"object","properties":{"etapes":{"type":"array","maxItems":8,"items":{"type":"string","minLength":1,"maxLength":160}},"prochaine_reunion":{"type":["string","null"],"maxLength":80}},"required":["etapes","prochaine_reunion"],"additionalProperties":false}"#,
    ),
];

/// What a section says when its notes say nothing (or its answer cannot be read).
pub const NOT_STATED: &str = "Non précisé";

/// The Markdown of section `key` from its JSON answer `data` (as [`SECTIONS`] shapes it):
/// a sentence, or a bulleted list; `None` when it holds nothing.
pub fn section_markdown(key: &str, data: &serde_json::Value) -> Option<String> {
    let text = |v: &serde_json::Value| {
        v.as_str()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty())
    };
    let list = |field: &str| -> Vec<&serde_json::Value> {
        data.get(field)
            .and_then(serde_json::Value::as_array)
            .map(|a| a.iter().collect())
            .unwrap_or_default()
    };
    let bullets = |lines: Vec<String>| {
        (!lines.is_empty()).then(|| {
            lines
                .iter()
                .map(|l| format!("- {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        })
    };
    match key {
        "subject" => data.get("objet").and_then(text),
        "participants" => bullets(
            list("participants")
                .into_iter()
                .filter_map(|p| {
                    let name = p.get("nom").and_then(text)?;
                    Some(match p.get("fonction").and_then(text) {
                        Some(f) => format!("{name}, {f}"),
                        None => name,
                    })
                })
                .collect(),
        ),
        "decisions" => bullets(list("decisions").into_iter().filter_map(text).collect()),
        "actions" => bullets(
            list("actions")
                .into_iter()
                .filter_map(|a| {
                    let what = a.get("action").and_then(text)?;
                    let mut more = Vec::new();
                    if let Some(r) = a.get("responsable").and_then(text) {
                        more.push(format!("responsable : {r}"));
                    }
                    if let Some(e) = a.get("echeance").and_then(text) {
                        more.push(format!("échéance : {e}"));
                    }
                    Some(if more.is_empty() {
                        what
                    } else {
                        format!("{what} ({})", more.join(" ; "))
                    })
                })
                .collect(),
        ),
        "next_steps" => {
            let mut lines: Vec<String> = list("etapes").into_iter().filter_map(text).collect();
            if let Some(d) = data.get("prochaine_reunion").and_then(text) {
                lines.push(format!("Prochaine réunion : {d}"));
            }
            bullets(lines)
        }
        _ => None,
    }
}

/// One answer of the model, with what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Why the model gave no answer. The pipeline recovers from [`AskError::ContextExceeded`]
/// (by asking with less text) and stops on anything else; both carry the model's own error,
/// so that the caller gets back exactly what its model said.
#[derive(Debug, thiserror::Error)]
pub enum AskError<E> {
    /// The prompt does not fit the model's context window.
    #[error("the prompt does not fit the model's context window")]
    ContextExceeded(E),
    /// Any other failure of the model.
    #[error("the model failed")]
    Other(E),
}

impl<E> AskError<E> {
    /// The model's error, whichever the kind.
    pub fn into_inner(self) -> E {
        match self {
            AskError::ContextExceeded(e) | AskError::Other(e) => e,
        }
    }
}

/// The language model, as the pipeline sees it: one greedy answer to a system prompt and a
/// user prompt, of at most `max_tokens` tokens (the model may lower that bound), held to the
/// JSON `schema` when one is given (a [`SECTIONS`] schema).
pub trait Model {
    type Error;

    fn ask(
        &mut self,
        system: &str,
        user: String,
        max_tokens: u32,
        schema: Option<&'static str>,
    ) -> impl Future<Output = Result<Answer, AskError<Self::Error>>> + Send;
}

/// What the pipeline reports as it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Step `done` of `total` of a stage (`notes`, `condense` or `sections`) begins; the last
    /// event is `sections` with `done == total`.
    Step {
        stage: &'static str,
        done: usize,
        total: usize,
    },
    /// A section is written: its Markdown and its data.
    Section {
        key: &'static str,
        title: &'static str,
        text: String,
        data: serde_json::Value,
    },
}

/// One section of the minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub key: &'static str,
    pub title: &'static str,
    /// Markdown ([`section_markdown`]), or [`NOT_STATED`].
    pub text: String,
    /// The answer as the section's schema shapes it; `null` when it could not be read (cut
    /// by the token limit).
    pub data: serde_json::Value,
}

/// The drafted minutes, and the tokens spent on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Minutes {
    pub markdown: String,
    pub sections: Vec<Section>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

/// Characters of text one prompt may carry, for a context window of `n_ctx` tokens.
pub fn budget(n_ctx: usize) -> usize {
    let room = n_ctx
        .saturating_sub(PROMPT_OVERHEAD_TOKENS + SECTION_MAX_TOKENS.max(NOTES_MAX_TOKENS) as usize)
        .max(200);
    room * CHARS_PER_TOKEN
}

/// Cuts `text` into parts of at most `max` characters, at a sentence end or a space.
pub fn split(text: &str, max: usize) -> Vec<&str> {
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

/// The map-reduce from a transcript to [`Minutes`], over a [`Model`].
pub struct Pipeline<M> {
    model: M,
    prompt_tokens: u32,
    completion_tokens: u32,
    /// Characters of text one prompt may carry.
    budget: usize,
}

impl<M: Model + Send> Pipeline<M> {
    /// A pipeline asking `model`, with prompts carrying at most `budget` characters of text
    /// (see [`budget`]).
    pub fn new(model: M, budget: usize) -> Self {
        Pipeline {
            model,
            prompt_tokens: 0,
            completion_tokens: 0,
            budget,
        }
    }

    /// Asks with `text` inside the prompt `make` builds; when the prompt overflows the context
    /// (the part was denser in tokens than estimated), the text is halved and asked again
    /// piece by piece, the answers joined.
    async fn ask_fitting(
        &mut self,
        text: &str,
        make: &(dyn Fn(&str) -> String + Sync),
        max_tokens: u32,
    ) -> Result<String, AskError<M::Error>> {
        let mut pending = vec![text.to_string()];
        let mut answers = Vec::new();
        while let Some(t) = pending.pop() {
            match self.ask(make(&t), max_tokens, None).await {
                Ok(a) => answers.push(a),
                Err(AskError::ContextExceeded(_)) if t.chars().count() > 200 => {
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

    async fn ask(
        &mut self,
        user: String,
        max_tokens: u32,
        schema: Option<&'static str>,
    ) -> Result<String, AskError<M::Error>> {
        let a = self.model.ask(PERSONA, user, max_tokens, schema).await?;
        self.prompt_tokens += a.prompt_tokens;
        self.completion_tokens += a.completion_tokens;
        Ok(a.text.trim().to_string())
    }

    /// One section from the notes; when they overflow the context, from their first part
    /// that fits (the notes are already condensed: what is cut is the least important).
    async fn section(
        &mut self,
        notes: &str,
        make: &(dyn Fn(&str) -> String + Sync),
        schema: &'static str,
    ) -> Result<String, AskError<M::Error>> {
        let mut notes = notes.to_string();
        loop {
            match self
                .ask(make(&notes), SECTION_MAX_TOKENS, Some(schema))
                .await
            {
                Err(AskError::ContextExceeded(_)) if notes.chars().count() > 200 => {
                    let keep = notes.chars().count() / 2;
                    notes = notes.chars().take(keep).collect();
                }
                other => return other,
            }
        }
    }

    /// Drafts the minutes of `transcript`, reporting each step to `progress`. Fails with the
    /// model's first error that asking with less text does not get around.
    pub async fn run<P: FnMut(Progress) + Send>(
        mut self,
        transcript: &str,
        title: Option<&str>,
        date: Option<&str>,
        mut progress: P,
    ) -> Result<Minutes, AskError<M::Error>> {
        let parts = split(transcript, self.budget);
        let total = parts.len() + SECTIONS.len();
        let mut notes = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter().enumerate() {
            progress(Progress::Step {
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
                progress(Progress::Step {
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
        for (i, (key, name, what, schema)) in SECTIONS.iter().enumerate() {
            progress(Progress::Step {
                stage: "sections",
                done: i,
                total: SECTIONS.len(),
            });
            let ask = |notes: &str| {
                format!(
                    "Notes de la réunion :\n\n{notes}\n\nRemplis uniquement la rubrique « \
                     {name} » du compte rendu : {what}. Réponds en JSON, en français, avec \
                     seulement ce que disent les notes : null ou une liste vide si elles ne le \
                     disent pas."
                )
            };
            let answer = self.section(&notes, &ask, schema).await?;
            // The grammar keeps the answer to the schema; only a cut (the token limit) can
            // leave it unreadable.
            let data: serde_json::Value =
                serde_json::from_str(&answer).unwrap_or(serde_json::Value::Null);
            let text = section_markdown(key, &data).unwrap_or_else(|| NOT_STATED.to_string());
            markdown.push_str(&format!("## {name}\n\n{text}\n\n"));
            sections.push(Section {
                key,
                title: name,
                text: text.clone(),
                data: data.clone(),
            });
            progress(Progress::Section {
                key,
                title: name,
                text,
                data,
            });
        }
        progress(Progress::Step {
            stage: "sections",
            done: SECTIONS.len(),
            total: SECTIONS.len(),
        });
        log::info!(
            "minutes drafted: {} part(s), {} steps, {} + {} tokens",
            parts.len(),
            total,
            self.prompt_tokens,
            self.completion_tokens
        );
        Ok(Minutes {
            markdown,
            sections,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.completion_tokens,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::ready;

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

    type Reply = Result<Answer, AskError<&'static str>>;

    /// A test double of the language model: answers from a script, records every request.
    /// The pipeline borrows it, so the requests can be read after [`Pipeline::run`].
    struct Scripted<F> {
        answer: F,
        /// (user prompt, max_tokens) of every request, in order.
        calls: Vec<(String, u32)>,
        /// The schema of every request.
        schemas: Vec<Option<&'static str>>,
    }

    impl<F: FnMut(&str) -> Reply + Send> Model for &mut Scripted<F> {
        type Error = &'static str;

        fn ask(
            &mut self,
            system: &str,
            user: String,
            max_tokens: u32,
            schema: Option<&'static str>,
        ) -> impl Future<Output = Reply> + Send {
            assert_eq!(system, PERSONA);
            let reply = (self.answer)(&user);
            self.calls.push((user, max_tokens));
            self.schemas.push(schema);
            ready(reply)
        }
    }

    fn scripted<F: FnMut(&str) -> Reply + Send>(answer: F) -> Scripted<F> {
        Scripted {
            answer,
            calls: Vec::new(),
            schemas: Vec::new(),
        }
    }

    fn says(text: &str) -> Reply {
        Ok(Answer {
            text: text.into(),
            prompt_tokens: 10,
            completion_tokens: 3,
        })
    }

    /// `n` sentences of 28 characters, separated by spaces.
    fn sentences(n: usize) -> String {
        (0..n)
            .map(|i| format!("Phrase numéro {i:03} du conseil."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn identity(t: &str) -> String {
        t.to_string()
    }

    fn prompts<F>(m: &Scripted<F>, prefix: &str) -> Vec<String> {
        m.calls
            .iter()
            .filter(|(u, _)| u.starts_with(prefix))
            .map(|(u, _)| u.clone())
            .collect()
    }

    #[tokio::test]
    async fn an_overflowing_text_is_halved_until_it_fits_and_answers_keep_its_order() {
        let text = sentences(40);
        let mut model = scripted(|user: &str| {
            if user.chars().count() > 300 {
                Err(AskError::ContextExceeded("too long"))
            } else {
                says(&format!("  {user}  "))
            }
        });
        let mut p = Pipeline::new(&mut model, 10_000);
        let joined = p
            .ask_fitting(&text, &identity, NOTES_MAX_TOKENS)
            .await
            .expect("answers");
        let prompt_tokens = p.prompt_tokens;
        let calls = &model.calls;
        assert!(calls.iter().all(|(_, m)| *m == NOTES_MAX_TOKENS));
        assert_eq!(calls[0].0, text, "the whole text is asked first");
        let fitted: Vec<&str> = calls
            .iter()
            .map(|(u, _)| u.as_str())
            .filter(|u| u.chars().count() <= 300)
            .collect();
        assert!(fitted.len() >= 4, "{fitted:?}");
        // Each overflow halves (with a tenth of slack) what overflowed.
        for w in calls.windows(2) {
            let (a, b) = (w[0].0.chars().count(), w[1].0.chars().count());
            if a > 300 {
                assert!(b <= a / 2 + a / 20 + 1, "{a} then {b}");
            }
        }
        // Answers are trimmed, joined by lines, in the order of the text.
        assert_eq!(joined, fitted.join("\n"));
        assert_eq!(
            joined.split_whitespace().collect::<Vec<_>>(),
            text.split_whitespace().collect::<Vec<_>>()
        );
        assert_eq!(prompt_tokens, 10 * fitted.len() as u32);
    }

    #[tokio::test]
    async fn an_overflow_of_a_short_text_or_another_error_is_returned() {
        let mut model = scripted(|_: &str| Err(AskError::ContextExceeded("too long")));
        let mut p = Pipeline::new(&mut model, 10_000);
        let e = p
            .ask_fitting(&"x".repeat(200), &identity, NOTES_MAX_TOKENS)
            .await;
        assert!(matches!(e, Err(AskError::ContextExceeded("too long"))));
        assert_eq!(model.calls.len(), 1);

        let mut model = scripted(|_: &str| Err(AskError::Other("worker gone")));
        let mut p = Pipeline::new(&mut model, 10_000);
        let e = p.ask_fitting(&sentences(40), &identity, 7).await;
        assert!(matches!(e, Err(AskError::Other("worker gone"))));
        assert_eq!(model.calls.len(), 1, "no retry on other errors");
    }

    #[tokio::test]
    async fn an_overflowing_section_is_written_from_the_first_half_of_the_notes() {
        let notes: String = ('a'..='z').cycle().take(1000).collect();
        let mut model = scripted(|user: &str| {
            if user.chars().count() > 300 {
                Err(AskError::ContextExceeded("too long"))
            } else {
                says(" Section.\n")
            }
        });
        let mut p = Pipeline::new(&mut model, 10_000);
        let text = p
            .section(&notes, &identity, SECTIONS[0].3)
            .await
            .expect("section");
        assert_eq!(text, "Section.");
        let asked: Vec<(&str, u32)> = model.calls.iter().map(|(u, m)| (u.as_str(), *m)).collect();
        assert_eq!(
            asked,
            [
                (&notes[..], SECTION_MAX_TOKENS),
                (&notes[..500], SECTION_MAX_TOKENS),
                (&notes[..250], SECTION_MAX_TOKENS)
            ]
        );

        // Down to 200 characters, the overflow is the caller's.
        let mut model = scripted(|_: &str| Err(AskError::ContextExceeded("too long")));
        let mut p = Pipeline::new(&mut model, 10_000);
        let e = p.section(&"n".repeat(400), &identity, SECTIONS[0].3).await;
        assert!(matches!(e, Err(AskError::ContextExceeded(_))));
        assert_eq!(model.calls.len(), 2);
    }

    #[tokio::test]
    async fn long_notes_are_condensed_into_the_notes_each_section_is_written_from() {
        let budget = 400;
        let mut model = scripted(|user: &str| {
            if user.starts_with("Extrait") {
                says(&"a".repeat(250))
            } else if user.starts_with("Notes d'une réunion") {
                says("- condensé")
            } else {
                says(
                    r#"{"objet": "Rubrique.", "participants": [], "decisions": ["Rubrique."],
                        "actions": [], "etapes": [], "prochaine_reunion": null}"#,
                )
            }
        });
        let transcript = sentences(40);
        let parts = split(&transcript, budget).len();
        assert!(parts >= 3);
        let mut events = Vec::new();
        let minutes = Pipeline::new(&mut model, budget)
            .run(&transcript, None, None, |p| events.push(p))
            .await
            .expect("minutes");
        let notes = prompts(&model, "Extrait ");
        assert_eq!(notes.len(), parts);
        assert!(notes[0].starts_with(&format!(
            "Extrait 1 sur {parts} de la transcription d'une réunion :\n\n"
        )));
        assert!(notes.iter().all(|u| u.ends_with(
            "\n\nNote en français, en liste à puces, ce que dit cet extrait : sujets abordés, \
             personnes nommées (et leur fonction si elle est dite), décisions prises, actions \
             à mener avec leur responsable et leur échéance. Seulement ce qui est dans \
             l'extrait."
        )));
        let condense = prompts(&model, "Notes d'une réunion :\n\n");
        assert!(!condense.is_empty());
        assert!(condense.iter().all(|u| u.ends_with(
            "\n\nRegroupe ces notes en une liste à puces plus courte, sans perdre les \
             décisions, les actions, leurs responsables ni les personnes nommées."
        )));
        let sections = prompts(&model, "Notes de la réunion :\n\n");
        assert_eq!(sections.len(), SECTIONS.len());
        let condensed = vec!["- condensé"; condense.len()].join("\n");
        assert_eq!(
            sections[0],
            format!(
                "Notes de la réunion :\n\n{condensed}\n\nRemplis uniquement la rubrique « \
                 Objet » du compte rendu : l'objet de la réunion, en une ou deux phrases. \
                 Réponds en JSON, en français, avec seulement ce que disent les notes : null ou \
                 une liste vide si elles ne le disent pas."
            )
        );
        assert!(model.calls.iter().all(|(u, m)| *m
            == if u.starts_with("Notes de la réunion") {
                SECTION_MAX_TOKENS
            } else {
                NOTES_MAX_TOKENS
            }));
        // Each section is asked with its schema; notes without one.
        let asked: Vec<Option<&str>> = model
            .calls
            .iter()
            .zip(&model.schemas)
            .filter(|((u, _), _)| u.starts_with("Notes de la réunion"))
            .map(|(_, s)| *s)
            .collect();
        assert_eq!(asked, SECTIONS.map(|s| Some(s.3)));
        let texts: Vec<&str> = minutes.sections.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(
            texts,
            [
                "Rubrique.",
                NOT_STATED,
                "- Rubrique.",
                NOT_STATED,
                NOT_STATED
            ]
        );
        assert_eq!(minutes.sections[2].data["decisions"][0], "Rubrique.");
        let calls = model.calls.len() as u32;
        assert_eq!(
            (minutes.prompt_tokens, minutes.completion_tokens),
            (10 * calls, 3 * calls)
        );
        assert!(events.contains(&Progress::Step {
            stage: "condense",
            done: 0,
            total: condense.len()
        }));
    }

    #[tokio::test]
    async fn notes_that_never_shrink_are_condensed_four_times_then_cut_to_the_budget() {
        let budget = 400;
        let mut model = scripted(|user: &str| {
            if user.starts_with("Notes de la réunion") {
                says(r#"{"objet": "Rubrique."}"#)
            } else {
                says(&"b".repeat(299))
            }
        });
        let mut events = Vec::new();
        Pipeline::new(&mut model, budget)
            .run(&sentences(40), None, None, |p| events.push(p))
            .await
            .expect("minutes");
        let firsts: Vec<&str> = events
            .iter()
            .filter_map(|e| match e {
                Progress::Step { stage, done: 0, .. } => Some(*stage),
                _ => None,
            })
            .collect();
        assert_eq!(
            firsts,
            ["notes", "condense", "condense", "condense", "condense", "sections"]
        );
        let sections = prompts(&model, "Notes de la réunion :\n\n");
        assert_eq!(sections.len(), SECTIONS.len());
        let notes = sections[0]
            .strip_prefix("Notes de la réunion :\n\n")
            .and_then(|s| s.split("\n\nRemplis").next())
            .expect("notes");
        assert_eq!(notes.chars().count(), budget);
    }

    #[tokio::test]
    async fn progress_comes_in_order_and_empty_answers_read_non_precise() {
        let mut model = scripted(|user: &str| {
            if user.starts_with("Extrait") {
                says("- le conseil vote le budget")
            } else if user.contains("« Décisions »") {
                says(r#"{"decisions": ["Le budget est adopté."]}"#)
            } else if user.contains("« Actions »") {
                // Cut by the token limit: not JSON.
                says(r#"{"actions": [{"action": "Publier"#)
            } else {
                says("  \n ")
            }
        });
        let mut events = Vec::new();
        let minutes = Pipeline::new(&mut model, budget(4096))
            .run(
                "Le conseil vote le budget. Adopté.",
                Some("Conseil municipal"),
                Some("12 mars 2025"),
                |p| events.push(p),
            )
            .await
            .expect("minutes");
        let mut expected = vec![Progress::Step {
            stage: "notes",
            done: 0,
            total: 1,
        }];
        for (i, (key, title, _, _)) in SECTIONS.iter().enumerate() {
            expected.push(Progress::Step {
                stage: "sections",
                done: i,
                total: 5,
            });
            let (text, data) = if *key == "decisions" {
                (
                    "- Le budget est adopté.",
                    serde_json::json!({"decisions": ["Le budget est adopté."]}),
                )
            } else {
                (NOT_STATED, serde_json::Value::Null)
            };
            expected.push(Progress::Section {
                key,
                title,
                text: text.into(),
                data,
            });
        }
        expected.push(Progress::Step {
            stage: "sections",
            done: 5,
            total: 5,
        });
        assert_eq!(events, expected);
        assert_eq!(
            minutes.markdown,
            "# Compte rendu de réunion — Conseil municipal\n\n\
             Date : 12 mars 2025\n\n\
             *Brouillon rédigé par l'IA à partir de la transcription automatique — à vérifier \
             et compléter avant toute diffusion.*\n\n\
             ## Objet\n\nNon précisé\n\n\
             ## Participants\n\nNon précisé\n\n\
             ## Décisions\n\n- Le budget est adopté.\n\n\
             ## Actions\n\nNon précisé\n\n\
             ## Prochaines étapes\n\nNon précisé\n\n"
        );
        let keys: Vec<&str> = minutes.sections.iter().map(|s| s.key).collect();
        assert_eq!(
            keys,
            [
                "subject",
                "participants",
                "decisions",
                "actions",
                "next_steps"
            ]
        );
        assert_eq!(model.calls.len(), 1 + SECTIONS.len());
    }

    #[test]
    fn the_budget_leaves_room_for_the_instructions_and_the_answer() {
        assert_eq!(budget(4096), (4096 - 350 - 600) * 2);
        assert_eq!(budget(512), 200 * 2);
    }

    #[test]
    fn sections_read_as_markdown_from_their_data() {
        use serde_json::json;
        let md = |key, v| section_markdown(key, &v);
        assert_eq!(
            md("subject", json!({"objet": " Vote du  budget "})),
            Some("Vote du budget".into())
        );
        assert_eq!(md("subject", json!({"objet": null})), None);
        assert_eq!(
            md(
                "participants",
                json!({"participants": [{"nom": "M. Morel", "fonction": "maire"}, {"nom": "Mme Petit", "fonction": null}]})
            ),
            Some("- M. Morel, maire\n- Mme Petit".into())
        );
        assert_eq!(
            md("actions", json!({"actions": [{"action": "Publier l'arrêté", "responsable": "secrétariat", "echeance": "vendredi"}, {"action": "Prévenir l'école", "responsable": null, "echeance": null}]})),
            Some("- Publier l'arrêté (responsable : secrétariat ; échéance : vendredi)\n- Prévenir l'école".into())
        );
        assert_eq!(
            md(
                "next_steps",
                json!({"etapes": [], "prochaine_reunion": "12 avril"})
            ),
            Some("- Prochaine réunion : 12 avril".into())
        );
        assert_eq!(md("decisions", json!({"decisions": []})), None);
        assert_eq!(md("decisions", serde_json::Value::Null), None);
        // Every section's schema is JSON.
        for (_, _, _, schema) in SECTIONS {
            let v: serde_json::Value = serde_json::from_str(schema).expect("a schema");
            assert_eq!(v["additionalProperties"], false);
        }
    }
}
