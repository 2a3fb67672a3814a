//! The accounts service: users, keys, quotas and the usage report, with the rules that keep
//! the box administrable (the last active admin can never be removed, disabled or demoted).

use crate::{day_start, generate_password, now, Auth, AuthError, QuotaView, Result};
use civia_store::{check_password_policy, check_service, ApiKeyInfo, Role, Store, UsageDay, User};

/// Longest key life: ten years (exclusive).
pub const MAX_KEY_DAYS: u32 = 3650;

/// Longest usage report, in days.
pub const MAX_REPORT_DAYS: u32 = 3660;

/// A change to a user; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct UserChange {
    pub role: Option<Role>,
    pub disabled: Option<bool>,
    /// `Some(None)` clears the service.
    pub service: Option<Option<String>>,
    pub password: Option<String>,
    /// Generate a new password (and return it); never together with `password`.
    pub reset_password: bool,
}

/// A key to create.
#[derive(Debug, Clone)]
pub struct KeyRequest {
    pub user: String,
    pub name: Option<String>,
    /// Limits the key to this model (one of the served ids).
    pub model: Option<String>,
    pub expires_in_days: Option<u32>,
}

/// A created key: shown once.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub key: String,
    pub info: ApiKeyInfo,
    pub owner: i64,
}

/// How the usage report groups its rows: never by agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageGroup {
    Model,
    Service,
}

impl UsageGroup {
    pub fn as_str(self) -> &'static str {
        match self {
            UsageGroup::Model => "model",
            UsageGroup::Service => "service",
        }
    }
}

impl std::str::FromStr for UsageGroup {
    type Err = AuthError;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "model" => Ok(UsageGroup::Model),
            "service" => Ok(UsageGroup::Service),
            _ => Err(AuthError::Invalid {
                param: "by",
                message: "`by` must be `model` or `service` (reports never rank agents).".into(),
            }),
        }
    }
}

/// The usage report: daily totals per model or service over `[from, to)`.
#[derive(Debug, Clone)]
pub struct UsageReport {
    pub group: UsageGroup,
    pub from: i64,
    pub to: i64,
    pub rows: Vec<UsageDay>,
}

/// Refuses to leave the box without an active administrator: `user` is the last one and the
/// change would remove, disable or demote them.
pub(crate) fn guard_last_admin(s: &Store, user: &User, removed: bool) -> Result<()> {
    if removed && user.role == Role::Admin && !user.disabled && s.active_admins()? <= 1 {
        return Err(AuthError::LastAdmin);
    }
    Ok(())
}

/// When a key of `days` days expires; refuses 0 and ten years or more.
pub fn key_expiry(days: Option<u32>, now: i64) -> Result<Option<i64>> {
    match days {
        Some(0) | Some(MAX_KEY_DAYS..) => Err(AuthError::Invalid {
            param: "expires_in_days",
            message: format!(
                "`expires_in_days` must be between 1 and {}.",
                MAX_KEY_DAYS - 1
            ),
        }),
        Some(d) => Ok(Some(now + i64::from(d) * 86_400)),
        None => Ok(None),
    }
}

impl Auth {
    /// Runs `f` on the store on a blocking thread, with the service's own errors.
    pub(crate) async fn in_store<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        self.with_store(move |s| Ok(f(s))).await?
    }

    pub async fn users(&self) -> Result<Vec<User>> {
        self.with_store(|s| s.users()).await
    }

    pub async fn user(&self, name: String) -> Result<User> {
        self.with_store(move |s| s.user(&name)).await
    }

    /// Changes a user: everything is validated before anything changes. Returns the user
    /// and the generated password when `reset_password` was asked.
    pub async fn change_user(
        &self,
        name: String,
        change: UserChange,
    ) -> Result<(User, Option<String>)> {
        let generated = if change.reset_password {
            Some(generate_password()?)
        } else {
            None
        };
        let password = change.password.clone().or_else(|| generated.clone());
        let UserChange {
            role,
            disabled,
            service,
            ..
        } = change;
        let user = self
            .in_store(move |s| {
                let before = s.user(&name)?;
                let demoted = role.is_some_and(|r| r != Role::Admin) || disabled == Some(true);
                guard_last_admin(s, &before, demoted)?;
                if let Some(p) = &password {
                    check_password_policy(p)?;
                }
                if let Some(Some(svc)) = &service {
                    check_service(svc)?;
                }
                if let Some(p) = &password {
                    // An administrator now knows a password of this user: everything that
                    // opened their history goes (sessions, keys), and the history with it,
                    // so that the password never reaches what the user kept.
                    s.set_password(&name, p)?;
                    s.revoke_credentials(before.id)?;
                    s.delete_history(before.id)?;
                }
                if let Some(svc) = &service {
                    s.set_service(&name, svc.as_deref())?;
                }
                if let Some(r) = role {
                    s.set_role(&name, r)?;
                }
                if let Some(d) = disabled {
                    s.set_disabled(&name, d)?;
                }
                Ok(s.user(&name)?)
            })
            .await?;
        Ok((user, generated))
    }

    /// Deletes a user (never the last active admin); returns their id.
    pub async fn delete_user(&self, name: String) -> Result<i64> {
        self.in_store(move |s| {
            let u = s.user(&name)?;
            guard_last_admin(s, &u, true)?;
            s.delete_user(&name)?;
            Ok(u.id)
        })
        .await
    }

    /// Sets a user's quota overrides (None: role default); returns the new view.
    pub async fn set_quota(
        &self,
        name: String,
        rpm: Option<u32>,
        tokens: Option<u64>,
    ) -> Result<(User, QuotaView)> {
        if tokens.is_some_and(|t| t > i64::MAX as u64) {
            return Err(AuthError::Invalid {
                param: "tokens_per_day",
                message: "`tokens_per_day` is too large.".into(),
            });
        }
        let n = name.clone();
        self.with_store(move |s| s.set_quota(&n, rpm, tokens))
            .await?;
        self.quota_view(name).await
    }

    /// The keys, of one user (who must exist) or all.
    pub async fn keys(&self, user: Option<String>) -> Result<Vec<ApiKeyInfo>> {
        self.with_store(move |s| {
            if let Some(u) = &user {
                s.user(u)?;
            }
            s.keys(user.as_deref())
        })
        .await
    }

    /// Creates a key. A model scope must be one of `served` (the first is the main model,
    /// named in the refusal); the life is 1 day to under [`MAX_KEY_DAYS`].
    pub async fn create_key(&self, req: KeyRequest, served: &[String]) -> Result<NewKey> {
        if let Some(m) = &req.model {
            if !served.contains(m) {
                return Err(AuthError::UnknownModel {
                    asked: m.clone(),
                    served: served.first().cloned().unwrap_or_default(),
                });
            }
        }
        let expires_at = key_expiry(req.expires_in_days, now())?;
        let name = req.name.unwrap_or_else(|| "default".into());
        let (user, model) = (req.user, req.model);
        self.with_store(move |s| {
            let (key, info) = s.create_key(&user, &name, model.as_deref(), expires_at)?;
            let owner = s.user(&user)?.id;
            Ok(NewKey { key, info, owner })
        })
        .await
    }

    /// The caller makes a key for themselves. It reaches their history only when the
    /// credential they call with does (see [`Principal::owner`]): a key an administrator made
    /// cannot mint one that does.
    pub async fn create_own_key(
        &self,
        who: &crate::Principal,
        name: Option<String>,
        model: Option<String>,
        expires_in_days: Option<u32>,
        served: &[String],
    ) -> Result<NewKey> {
        let Some(user) = who.user() else {
            return Err(AuthError::Forbidden {
                role: "admin",
                action: "make a personal key (the admin socket is not a user)",
            });
        };
        if let Some(m) = &model {
            if !served.contains(m) {
                return Err(AuthError::UnknownModel {
                    asked: m.clone(),
                    served: served.first().cloned().unwrap_or_default(),
                });
            }
        }
        let own = who.owner().is_ok();
        let expires_at = key_expiry(expires_in_days, now())?;
        let name = name.unwrap_or_else(|| "personnelle".into());
        let (owner, uname) = (user.id, user.name.clone());
        self.with_store(move |s| {
            let (key, info) = if own {
                s.create_own_key(&uname, &name, model.as_deref(), expires_at)?
            } else {
                s.create_key(&uname, &name, model.as_deref(), expires_at)?
            };
            Ok(NewKey { key, info, owner })
        })
        .await
    }

    /// The caller replaces their password with one of their choosing (the current one is
    /// checked): from then on their sessions reach their history.
    pub async fn change_own_password(
        &self,
        who: &crate::Principal,
        current: String,
        new: String,
    ) -> Result<()> {
        let Some(user) = who.user() else {
            return Err(AuthError::Forbidden {
                role: "admin",
                action: "change a password (the admin socket is not a user)",
            });
        };
        if current.len() > 1024 || new.len() > 1024 {
            return Err(AuthError::WrongPassword);
        }
        let name = user.name.clone();
        self.in_store(move |s| {
            if s.verify_password(&name, &current)?.is_none() {
                return Err(AuthError::WrongPassword);
            }
            check_password_policy(&new)?;
            Ok(s.set_own_password(&name, &new)?)
        })
        .await
    }

    /// Revokes an active key.
    pub async fn revoke_key(&self, id: i64) -> Result<()> {
        if self.with_store(move |s| s.revoke_key(id)).await? {
            Ok(())
        } else {
            Err(AuthError::KeyNotFound(id))
        }
    }

    /// Daily totals per model (default) or service over the last `days` days (30 by
    /// default), the current day included.
    pub async fn usage_report(&self, days: Option<u32>, by: Option<&str>) -> Result<UsageReport> {
        let days = days.unwrap_or(30);
        if !(1..=MAX_REPORT_DAYS).contains(&days) {
            return Err(AuthError::Invalid {
                param: "days",
                message: format!("`days` must be between 1 and {MAX_REPORT_DAYS}."),
            });
        }
        let group: UsageGroup = by.unwrap_or("model").parse()?;
        let to = day_start() + 86_400;
        let from = to - i64::from(days) * 86_400;
        let rows = self
            .with_store(move |s| match group {
                UsageGroup::Service => s.usage_by_service(from, to),
                UsageGroup::Model => s.usage_by_day(from, to),
            })
            .await?;
        Ok(UsageReport {
            group,
            from,
            to,
            rows,
        })
    }

    pub async fn user_count(&self) -> Result<u64> {
        self.with_store(|s| s.user_count()).await
    }
}
