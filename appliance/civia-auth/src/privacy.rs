//! The privacy service (RGPD art. 15, 17, 20): an agent's own history, everything the box
//! holds about a user, and the erasure of a data-subject request. Every history query takes
//! the owner's id.

use crate::accounts::guard_last_admin;
use crate::{Auth, AuthError, Result};
use civia_store::{Acceptance, ApiKeyInfo, Conversation, Message, UsageDay, User};

/// Everything the store holds about a user (the audit trail aside).
#[derive(Debug, Clone)]
pub struct UserData {
    pub user: User,
    pub keys: Vec<ApiKeyInfo>,
    pub acceptances: Vec<Acceptance>,
    pub conversations: Vec<(Conversation, Vec<Message>)>,
    pub usage: Vec<UsageDay>,
}

/// What an erasure removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Erased {
    pub user_id: i64,
    pub conversations: u64,
    pub account_deleted: bool,
}

/// A data-subject request's reason is mandatory and recorded ("demande d'accès du 3 mars
/// (courrier n° 12)"): 1 to 200 printable characters, trimmed.
pub fn dsr_reason(r: Option<String>) -> Result<String> {
    let r = r.unwrap_or_default();
    let r = r.trim();
    if r.is_empty() || r.chars().count() > 200 || r.chars().any(char::is_control) {
        return Err(AuthError::Invalid {
            param: "reason",
            message:
                "`reason` is required: 1 to 200 printable characters (the request's reference)."
                    .into(),
        });
    }
    Ok(r.to_string())
}

impl Auth {
    /// The owner's conversations.
    pub async fn conversations(&self, owner: i64) -> Result<Vec<Conversation>> {
        self.with_store(move |s| s.conversations(owner)).await
    }

    /// One of the owner's conversations with its messages (None: not theirs or absent).
    pub async fn conversation(
        &self,
        owner: i64,
        id: String,
    ) -> Result<Option<(Conversation, Vec<Message>)>> {
        self.with_store(move |s| s.conversation(owner, &id)).await
    }

    /// Erases one of the owner's conversations; false when they have none with this id.
    pub async fn delete_conversation(&self, owner: i64, id: String) -> Result<bool> {
        self.with_store(move |s| s.delete_conversation(owner, &id))
            .await
    }

    /// Erases all the owner's conversations; returns how many.
    pub async fn delete_history(&self, owner: i64) -> Result<u64> {
        self.with_store(move |s| s.delete_history(owner)).await
    }

    /// Everything the box holds about `user`, for their own export or the DPO's.
    pub async fn user_data(&self, user: User) -> Result<UserData> {
        self.with_store(move |s| {
            let uid = user.id;
            let keys = s.keys(Some(&user.name))?;
            let acceptances = s.charter_register(Some(uid))?;
            let mut conversations = Vec::new();
            for c in s.conversations(uid)? {
                if let Some(full) = s.conversation(uid, &c.id)? {
                    conversations.push(full);
                }
            }
            let usage = s.usage_of(uid)?;
            Ok(UserData {
                user,
                keys,
                acceptances,
                conversations,
                usage,
            })
        })
        .await
    }

    /// A data-subject erasure: the user's conversations, and the account when asked (never
    /// the last active admin's: then nothing is erased).
    pub async fn erase_user(&self, name: String, delete_account: bool) -> Result<Erased> {
        let user = self.user(name).await?;
        self.in_store(move |s| {
            guard_last_admin(s, &user, delete_account)?;
            let n = s.delete_history(user.id)?;
            if delete_account {
                s.delete_user(&user.name)?;
            }
            Ok(Erased {
                user_id: user.id,
                conversations: n,
                account_deleted: delete_account,
            })
        })
        .await
    }
}
