//! Keeping a chat exchange in its author's history (`civia.save`): the request's options
//! checked before generating ([`Auth::prepare_keep`]), the exchange stored once the answer
//! is complete ([`Keep::save`]).

use crate::{Auth, AuthError, Principal};
use civia_store::NewMessage;

/// What a chat request asks of the history: save the exchange, in which conversation, with
/// which title. Giving a conversation id implies `save`.
#[derive(Debug, Default, Clone)]
pub struct KeepRequest {
    pub save: Option<bool>,
    pub conversation_id: Option<String>,
    pub title: Option<String>,
}

/// Why an exchange cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    /// `[history] enabled = false`.
    #[error("Conversation history is turned off on this box ([history] enabled = false).")]
    Disabled,
    /// The caller is not a user (the local admin socket has no history).
    #[error("The local admin socket has no conversation history.")]
    NoHistory,
    /// The conversation is not the caller's (or does not exist); holds the id asked for.
    #[error("no conversation `{0}` in the caller's history")]
    NotFound(String),
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// A chat exchange to keep once its answer is complete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keep {
    owner: i64,
    /// The conversation it goes to (new or existing).
    pub id: String,
    title: String,
    /// The request's messages to add, as (role, content) (system messages are not kept).
    messages: Vec<(String, String)>,
}

impl Auth {
    /// Checks a chat request's history options before generating: history on (`enabled`),
    /// a user caller, a conversation of theirs. A new conversation keeps all the request's
    /// user and assistant `messages` (role, content); an existing one, only the last user
    /// message (clients resend the rest). None: nothing to keep.
    pub async fn prepare_keep<'a>(
        &self,
        enabled: bool,
        who: Option<&Principal>,
        req: Option<KeepRequest>,
        messages: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Option<Keep>, KeepError> {
        let Some(req) = req else { return Ok(None) };
        if !req.save.unwrap_or(req.conversation_id.is_some()) {
            return Ok(None);
        }
        if !enabled {
            return Err(KeepError::Disabled);
        }
        let who = who.ok_or(AuthError::MissingCredentials)?;
        who.user().ok_or(KeepError::NoHistory)?;
        let owner = who.owner()?.id;
        let kept = |(role, _): &(&str, &str)| *role == "user" || *role == "assistant";
        let pair = |(role, content): (&str, &str)| (role.to_string(), content.to_string());
        let (id, messages): (String, Vec<(String, String)>) = match req.conversation_id {
            Some(id) => {
                let key = id.clone();
                if !self
                    .with_store(move |s| s.owns_conversation(owner, &key))
                    .await?
                {
                    return Err(KeepError::NotFound(id));
                }
                let all: Vec<(&str, &str)> = messages.into_iter().collect();
                let last = all.into_iter().rev().find(|(r, _)| *r == "user").map(pair);
                (id, last.into_iter().collect())
            }
            None => (
                civia_store::new_conversation_id().map_err(AuthError::from)?,
                messages.into_iter().filter(kept).map(pair).collect(),
            ),
        };
        let title = req.title.unwrap_or_else(|| {
            messages
                .iter()
                .find(|(r, _)| r == "user")
                .map(|(_, c)| c.clone())
                .unwrap_or_default()
        });
        Ok(Some(Keep {
            owner,
            id,
            title,
            messages,
        }))
    }
}

impl Keep {
    /// Stores the exchange with the `answer` of `model`; a failure is logged (the answer
    /// itself was delivered: the caller only warns).
    pub async fn save(self, auth: &Auth, model: String, answer: String) -> Result<(), AuthError> {
        let Keep {
            owner,
            id,
            title,
            messages,
        } = self;
        auth.with_store(move |s| {
            let mut all: Vec<NewMessage<'_>> = messages
                .iter()
                .map(|(role, content)| NewMessage {
                    role,
                    content,
                    model: None,
                })
                .collect();
            all.push(NewMessage {
                role: "assistant",
                content: &answer,
                model: Some(&model),
            });
            s.append_messages(owner, &id, &title, &all)
        })
        .await
        .inspect_err(|e| log::error!("history: an exchange was not kept: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Role, Store};
    use civia_config::{AuthConfig, QuotasConfig};

    fn auth() -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("civia.db")).unwrap();
        let a = Auth::new(store, AuthConfig::default(), QuotasConfig::default()).unwrap();
        (dir, a)
    }

    async fn agent(a: &Auth, name: &str) -> Principal {
        let (user, _) = a
            .add_user(
                name.into(),
                Role::Agent,
                None,
                Some("correct horse battery".into()),
            )
            .await
            .unwrap();
        Principal::User {
            user,
            key_id: None,
            model_scope: None,
            session: false,
            own: true,
        }
    }

    const CHAT: [(&str, &str); 4] = [
        ("system", "Tu es l'assistant de la mairie."),
        ("user", "Horaires de la mairie ?"),
        ("assistant", "De 9 h à 17 h."),
        ("user", "Et le samedi ?"),
    ];

    fn save(conversation_id: Option<&str>) -> Option<KeepRequest> {
        Some(KeepRequest {
            save: Some(true),
            conversation_id: conversation_id.map(Into::into),
            title: None,
        })
    }

    async fn stored(a: &Auth, owner: i64, id: &str) -> Vec<(String, String, Option<String>)> {
        let (_, msgs) = a.conversation(owner, id.into()).await.unwrap().unwrap();
        msgs.into_iter()
            .map(|m| (m.role, m.content, m.model))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn nothing_is_kept_unless_asked() {
        let (_d, a) = auth();
        let me = agent(&a, "agent").await;
        let none = a.prepare_keep(true, Some(&me), None, CHAT).await.unwrap();
        assert!(none.is_none());
        let off = Some(KeepRequest {
            save: Some(false),
            ..KeepRequest::default()
        });
        assert!(a
            .prepare_keep(true, Some(&me), off, CHAT)
            .await
            .unwrap()
            .is_none());
        // Asked but history off: refused, even for the local admin.
        let r = a.prepare_keep(false, Some(&me), save(None), CHAT).await;
        assert!(matches!(r, Err(KeepError::Disabled)));
        let r = a
            .prepare_keep(false, Some(&Principal::LocalAdmin), save(None), CHAT)
            .await;
        assert!(matches!(r, Err(KeepError::Disabled)));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn only_users_have_a_history() {
        let (_d, a) = auth();
        let r = a
            .prepare_keep(true, Some(&Principal::LocalAdmin), save(None), CHAT)
            .await;
        assert!(matches!(r, Err(KeepError::NoHistory)));
        let r = a.prepare_keep(true, None, save(None), CHAT).await;
        assert!(matches!(
            r,
            Err(KeepError::Auth(AuthError::MissingCredentials))
        ));
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_new_conversation_keeps_the_exchange_and_an_existing_one_the_last_question() {
        let (_d, a) = auth();
        let me = agent(&a, "agent").await;
        let uid = me.user().unwrap().id;
        let k = a
            .prepare_keep(true, Some(&me), save(None), CHAT)
            .await
            .unwrap()
            .unwrap();
        assert!(k.id.starts_with("conv-"));
        assert_eq!(k.title, "Horaires de la mairie ?");
        let id = k.id.clone();
        k.save(&a, "civia-7b".into(), "Fermée.".into())
            .await
            .unwrap();
        let want = |r: &str, c: &str, m: Option<&str>| (r.into(), c.into(), m.map(Into::into));
        assert_eq!(
            stored(&a, uid, &id).await,
            vec![
                want("user", "Horaires de la mairie ?", None),
                want("assistant", "De 9 h à 17 h.", None),
                want("user", "Et le samedi ?", None),
                want("assistant", "Fermée.", Some("civia-7b")),
            ]
        );
        // Giving the id implies `save`; only the last user message is added.
        let follow_up = Some(KeepRequest {
            conversation_id: Some(id.clone()),
            title: Some("ignored for an existing one".into()),
            ..KeepRequest::default()
        });
        let k = a
            .prepare_keep(true, Some(&me), follow_up, CHAT)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(k.id, id);
        assert_eq!(k.messages, vec![("user".into(), "Et le samedi ?".into())]);
        k.save(&a, "civia-7b".into(), "Non.".into()).await.unwrap();
        let all = stored(&a, uid, &id).await;
        assert_eq!(all.len(), 6);
        assert_eq!(all[5], want("assistant", "Non.", Some("civia-7b")));
        let (conv, _) = a.conversation(uid, id).await.unwrap().unwrap();
        assert_eq!(conv.title, "Horaires de la mairie ?");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_given_title_is_kept_and_another_users_conversation_is_not_found() {
        let (_d, a) = auth();
        let me = agent(&a, "agent").await;
        let other = agent(&a, "autre").await;
        let titled = Some(KeepRequest {
            save: Some(true),
            title: Some("Samedi".into()),
            ..KeepRequest::default()
        });
        let k = a
            .prepare_keep(true, Some(&me), titled, CHAT)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(k.title, "Samedi");
        let id = k.id.clone();
        k.save(&a, "m".into(), "a".into()).await.unwrap();
        for asked in [id.as_str(), "conv-nope"] {
            let r = a
                .prepare_keep(true, Some(&other), save(Some(asked)), CHAT)
                .await;
            assert!(matches!(r, Err(KeepError::NotFound(ref i)) if i == asked));
        }
    }
}
