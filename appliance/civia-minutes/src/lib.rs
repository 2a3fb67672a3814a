//! Meeting minutes (« compte rendu ») drafted from a meeting transcript by the box's language
//! model: the map-reduce [`Pipeline`] behind `POST /v1/meetings/minutes`.
//!
//! The transcript is cut into parts that fit the context window ([`split`], [`budget`]), each
//! part becomes notes (subjects, named people, decisions, actions), the notes are condensed
//! until they fit, then each section of the minutes ([`SECTIONS`]) is written from the notes
//! on its own (so the structure is the box's, not the model's). Progress is reported as
//! [`Progress`] events; the result is [`Minutes`] (Markdown and sections, token counts).
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
/// Tokens asked at most for one section.
pub const SECTION_MAX_TOKENS: u32 = 300;
/// Condensing passes at most (each divides the notes by about the number of parts).
pub const MAX_CONDENSE_PASSES: usize = 4;

/// The system prompt of every request.
pub const PERSONA: &str = "Tu es secrétaire de séance dans une mairie française. Tu travailles \
uniquement à partir du texte fourni, sans rien inventer. Tu ne décris jamais les émotions, le \
ton, l'attitude ni la personnalité des participants, et tu ne fais aucune supposition sur eux.";

/// The sections of the minutes, in order: key, French title, what to write.
pub const SECTIONS: [(&str, &str, &str); 5] = [
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
/// user prompt, of at most `max_tokens` tokens (the model may lower that bound).
pub trait Model {
    type Error;

    fn ask(
        &mut self,
        system: &str,
        user: String,
        max_tokens: u32,
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
    /// A section is written.
    Section {
        key: &'static str,
        title: &'static str,
        text: String,
    },
}

/// One section of the minutes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub key: &'static str,
    pub title: &'static str,
    pub text: String,
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
            match self.ask(make(&t), max_tokens).await {
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

    async fn ask(&mut self, user: String, max_tokens: u32) -> Result<String, AskError<M::Error>> {
        let a = self.model.ask(PERSONA, user, max_tokens).await?;
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
    ) -> Result<String, AskError<M::Error>> {
        let mut notes = notes.to_string();
        loop {
            match self.ask(make(&notes), SECTION_MAX_TOKENS).await {
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
        for (i, (key, name, what)) in SECTIONS.iter().enumerate() {
            progress(Progress::Step {
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
            sections.push(Section {
                key,
                title: name,
                text: text.clone(),
            });
            progress(Progress::Section {
                key,
                title: name,
                text,
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
    }

    impl<F: FnMut(&str) -> Reply + Send> Model for &mut Scripted<F> {
        type Error = &'static str;

        fn ask(
            &mut self,
            system: &str,
            user: String,
            max_tokens: u32,
        ) -> impl Future<Output = Reply> + Send {
            assert_eq!(system, PERSONA);
            let reply = (self.answer)(&user);
            self.calls.push((user, max_tokens));
            ready(reply)
        }
    }

    fn scripted<F: FnMut(&str) -> Reply + Send>(answer: F) -> Scripted<F> {
        Scripted {
            answer,
            calls: Vec::new(),
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
        let text = p.section(&notes, &identity).await.expect("section");
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
        let e = p.section(&"n".repeat(400), &identity).await;
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
                says("Rubrique.")
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
                "Notes de la réunion :\n\n{condensed}\n\nRédige uniquement la rubrique « Objet \
                 » du compte rendu : l'objet de la réunion, en une ou deux phrases. Réponds en \
                 français, sans titre, en quelques lignes ou une liste à puces. Si les notes ne \
                 le disent pas, écris « Non précisé »."
            )
        );
        assert!(model.calls.iter().all(|(u, m)| *m
            == if u.starts_with("Notes de la réunion") {
                SECTION_MAX_TOKENS
            } else {
                NOTES_MAX_TOKENS
            }));
        assert!(minutes.sections.iter().all(|s| s.text == "Rubrique."));
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
                says("Rubrique.")
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
            .and_then(|s| s.split("\n\nRédige").next())
            .expect("notes");
        assert_eq!(notes.chars().count(), budget);
    }

    #[tokio::test]
    async fn progress_comes_in_order_and_empty_answers_read_non_precise() {
        let mut model = scripted(|user: &str| {
            if user.starts_with("Extrait") {
                says("- le conseil vote le budget")
            } else if user.contains("« Décisions »") {
                says("Le budget est adopté.")
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
        for (i, (key, title, _)) in SECTIONS.iter().enumerate() {
            expected.push(Progress::Step {
                stage: "sections",
                done: i,
                total: 5,
            });
            let text = if *key == "decisions" {
                "Le budget est adopté."
            } else {
                "Non précisé"
            };
            expected.push(Progress::Section {
                key,
                title,
                text: text.into(),
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
             ## Décisions\n\nLe budget est adopté.\n\n\
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
        assert_eq!(budget(4096), (4096 - 350 - 400) * 2);
        assert_eq!(budget(512), 200 * 2);
    }
}
