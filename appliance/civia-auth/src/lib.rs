//! Who is calling civiad and what they may do.
//!
//! Owns: checking API keys and web sessions against the store, password logins with
//! throttling (per account and per source address; a locked account costs no hashing, so it
//! slows nobody else), the roles' permissions, request-rate and daily-token quotas (role
//! defaults from the configuration, per-user overrides from the store), the one-time pairing
//! code that creates the first admin, the trial admin behind `CIVIA_DEV_API_KEY`, and writing
//! usage rows. The application services over the accounts' data: users, keys and quotas with
//! the last-admin guard, the usage report (by model or service), keeping a chat exchange in
//! its author's history (`civia.save`: which conversation, which messages, the title), the
//! privacy operations (history, data-subject export and erasure) and the usage charter with
//! its register (CSV with formula neutralisation). Store calls run on blocking threads, never
//! on the async executor.
//!
//! Must never: log a password, key, session token or pairing attempt's code; answer
//! differently for an unknown user and a wrong password; let a role do more than its
//! permissions; keep request or answer text outside the owner's history; leave the box
//! without an active administrator; rank agents in a usage report; speak HTTP.

mod accounts;
mod charter;
mod history;
mod privacy;
mod throttle;

pub use accounts::{
    key_expiry, KeyRequest, NewKey, UsageGroup, UsageReport, UserChange, MAX_KEY_DAYS,
    MAX_REPORT_DAYS,
};
pub use charter::{charter_signer, csv_field, register_csv, Register};
pub use history::{Keep, KeepError, KeepRequest};
pub use privacy::{dsr_reason, Erased, UserData};

pub use civia_store::{
    check_password_policy, check_service, csrf_token, new_conversation_id, now, Acceptance,
    ApiKeyInfo, Charter, Conversation, KeyCheck, Message, NewMessage, Role, Store, StoreError,
    UsageDay, UsageRecord, User,
};

use civia_config::{AuthConfig, QuotasConfig, RoleQuota};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use throttle::Throttle;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing credentials: send `Authorization: Bearer <key>` or log in")]
    MissingCredentials,
    #[error("invalid API key")]
    InvalidKey,
    #[error("this API key has been revoked")]
    RevokedKey,
    #[error("this API key has expired")]
    ExpiredKey,
    #[error("this account is disabled")]
    Disabled,
    #[error("wrong user name or password")]
    BadLogin,
    #[error("session expired or invalid: log in again")]
    BadSession,
    #[error("missing or wrong CSRF token (header X-CSRF-Token)")]
    Csrf,
    #[error("the role `{role}` may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    #[error("this API key is limited to the model `{0}`")]
    ModelScope(String),
    #[error("too many failed logins for this account: try again in {retry_after} s")]
    AccountLocked { retry_after: u64 },
    #[error("too many failed logins from this address: try again in {retry_after} s")]
    AddressBlocked { retry_after: u64 },
    #[error("{what} quota exceeded: try again in {retry_after} s")]
    Quota {
        what: &'static str,
        retry_after: u64,
    },
    #[error("wrong or used pairing code")]
    BadPairing,
    #[error(
        "Accept the usage charter (version {version}) before using the model: read it at \
         GET /v1/charter, then POST /v1/charter/accept."
    )]
    CharterNotAccepted { version: u32 },
    /// History needs a credential only its owner holds.
    #[error(
        "Your history is reachable only with credentials you alone hold: a password you chose \
             (POST /auth/password) or an API key you made with it (POST /v1/me/keys). Keys \
             made by an administrator and passwords an administrator set do not reach it."
    )]
    NotOwnCredential,
    #[error("The current password is wrong.")]
    WrongPassword,
    #[error("This is the last active administrator: create another one first.")]
    LastAdmin,
    #[error("No active API key #{0}.")]
    KeyNotFound(i64),
    /// A key scoped to a model this box does not serve (`served`: its main model).
    #[error("The model `{asked}` does not exist on this box; it serves `{served}`.")]
    UnknownModel { asked: String, served: String },
    #[error("The local admin socket does not accept the charter: users do.")]
    LocalAdminCharter,
    /// A value the service's rules refuse; `param` names the request field.
    #[error("{message}")]
    Invalid {
        param: &'static str,
        message: String,
    },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<civia_store::UnknownRole> for AuthError {
    fn from(e: civia_store::UnknownRole) -> Self {
        AuthError::Store(e.into())
    }
}

impl AuthError {
    /// Seconds after which trying again can succeed, for `Retry-After`.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AuthError::AccountLocked { retry_after }
            | AuthError::AddressBlocked { retry_after }
            | AuthError::Quota { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, AuthError>;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Principal {
    /// A user, through an API key or a web session.
    User {
        user: User,
        key_id: Option<i64>,
        model_scope: Option<String>,
        /// Authenticated by the session cookie (state-changing requests need the CSRF token).
        session: bool,
        /// The credential is one only the user holds: a key they made themselves, or a
        /// session opened with a password they chose. Only such credentials reach their
        /// history; an administrator can make keys and set passwords, never these.
        own: bool,
    },
    /// Whoever opened the admin Unix socket (root or the admin group): an administrator.
    LocalAdmin,
}

impl Principal {
    pub fn role(&self) -> Role {
        match self {
            Principal::User { user, .. } => user.role,
            Principal::LocalAdmin => Role::Admin,
        }
    }

    pub fn user(&self) -> Option<&User> {
        match self {
            Principal::User { user, .. } => Some(user),
            Principal::LocalAdmin => None,
        }
    }

    pub fn key_id(&self) -> Option<i64> {
        match self {
            Principal::User { key_id, .. } => *key_id,
            Principal::LocalAdmin => None,
        }
    }

    /// The user behind a credential only they hold (see `Principal::User::own`), or why not.
    pub fn owner(&self) -> Result<&User> {
        match self {
            Principal::User {
                user, own: true, ..
            } => Ok(user),
            Principal::User { .. } => Err(AuthError::NotOwnCredential),
            Principal::LocalAdmin => Err(AuthError::Forbidden {
                role: "admin",
                action: "read or change a user's history (only its owner may)",
            }),
        }
    }

    /// Who, for the journal: `user #<id>` or `local-admin`. Never the name: the journal
    /// outlives an account's erasure (the id means nothing once the account is gone).
    pub fn log_label(&self) -> String {
        match self {
            Principal::User { user, .. } => format!("user #{}", user.id),
            Principal::LocalAdmin => "local-admin".into(),
        }
    }

    /// Name for fairness between callers: the user name, or `local-admin`.
    pub fn name(&self) -> &str {
        match self {
            Principal::User { user, .. } => &user.name,
            Principal::LocalAdmin => "local-admin",
        }
    }

    /// Refuses with 403 unless the role is one of `roles`. A key limited to a model is for
    /// that model only: it never carries its owner's administration rights.
    pub fn require(&self, roles: &[Role], action: &'static str) -> Result<()> {
        if let Principal::User {
            model_scope: Some(_),
            ..
        } = self
        {
            if !roles.contains(&Role::Agent) {
                return Err(AuthError::Forbidden {
                    role: "model-scoped key",
                    action,
                });
            }
        }
        if roles.contains(&self.role()) {
            Ok(())
        } else {
            Err(AuthError::Forbidden {
                role: self.role().as_str(),
                action,
            })
        }
    }

    /// Refuses a key limited to another model.
    pub fn check_model(&self, model: &str) -> Result<()> {
        match self {
            Principal::User {
                model_scope: Some(m),
                ..
            } if m != model => Err(AuthError::ModelScope(m.clone())),
            _ => Ok(()),
        }
    }
}

/// Roles that may use the model (`/v1`, the web UI's tasks).
pub const MODEL_USERS: &[Role] = &[Role::Agent, Role::Admin];

/// The user name of the trial administrator behind `CIVIA_DEV_API_KEY`.
pub const TRIAL_ADMIN: &str = "trial-admin";
const TRIAL_KEY_NAME: &str = "CIVIA_DEV_API_KEY";

/// How many Argon2 verifications run at once (each takes ~19 MiB and a core for ~50 ms).
const PARALLEL_HASHES: usize = 2;

pub struct Auth {
    store: Arc<Mutex<Store>>,
    cfg: AuthConfig,
    quotas: QuotasConfig,
    throttle: Mutex<Throttle>,
    rates: Mutex<HashMap<i64, VecDeque<Instant>>>,
    /// Model requests admitted and not yet ended, per user (see [`InFlight`]).
    in_flight: Arc<Mutex<HashMap<i64, u32>>>,
    pairing: Mutex<Option<String>>,
    hashing: tokio::sync::Semaphore,
}

/// A freshly opened web session.
pub struct NewSession {
    pub user: User,
    pub token: String,
    pub csrf: String,
}

/// A user's quotas: the override (None: role default) and what applies (0: unlimited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaView {
    pub rpm_override: Option<u32>,
    pub tokens_override: Option<u64>,
    pub effective: RoleQuota,
    pub tokens_today: u64,
}

impl Auth {
    /// Wraps an opened store. When it has no user, a pairing code is created (see
    /// [`Auth::pairing_code`]).
    pub fn new(store: Store, cfg: AuthConfig, quotas: QuotasConfig) -> Result<Self> {
        let empty = store.user_count()? == 0;
        let auth = Self {
            store: Arc::new(Mutex::new(store)),
            cfg,
            quotas,
            throttle: Mutex::new(Throttle::default()),
            rates: Mutex::new(HashMap::new()),
            in_flight: Arc::default(),
            pairing: Mutex::new(None),
            hashing: tokio::sync::Semaphore::new(PARALLEL_HASHES),
        };
        if empty {
            *lock(&auth.pairing) = Some(random_code(8)?);
        }
        Ok(auth)
    }

    /// Absolute life of a web session, for the cookie's Max-Age.
    pub fn session_absolute_secs(&self) -> u64 {
        self.cfg.session_absolute_secs
    }

    /// The one-time pairing code while the box has no user yet.
    pub fn pairing_code(&self) -> Option<String> {
        lock(&self.pairing).clone()
    }

    /// Runs `f` on the store on a blocking thread.
    pub async fn with_store<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Store) -> std::result::Result<R, StoreError> + Send + 'static,
    ) -> Result<R> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let guard = store
                .lock()
                .map_err(|_| AuthError::Internal("store lock poisoned".into()))?;
            f(&guard).map_err(AuthError::from)
        })
        .await
        .map_err(|e| AuthError::Internal(format!("store task failed: {e}")))?
    }

    /// Makes `key` the trial administrator's API key (creating that admin if needed). The
    /// trial admin takes the place of pairing. Whoever sets `CIVIA_DEV_API_KEY` runs the box
    /// for a trial and accepts the current charter for the trial admin by doing so; the
    /// register records it with the channel `trial`.
    pub async fn install_trial_key(&self, key: String) -> Result<()> {
        let password = generate_password()?;
        self.with_store(move |s| {
            if let Err(StoreError::NoUser(_)) = s.user(TRIAL_ADMIN) {
                s.add_user(TRIAL_ADMIN, Role::Admin, &password)?;
            }
            s.set_disabled(TRIAL_ADMIN, false)?;
            s.import_key(TRIAL_ADMIN, TRIAL_KEY_NAME, &key)?;
            let admin = s.user(TRIAL_ADMIN)?;
            let version = s.charter()?.version;
            s.accept_charter(admin.id, version, "trial")?;
            Ok(0)
        })
        .await?;
        *lock(&self.pairing) = None;
        Ok(())
    }

    /// Checks a bearer API key.
    pub async fn bearer(&self, key: String) -> Result<Principal> {
        if key.is_empty() || key.len() > 256 {
            return Err(AuthError::InvalidKey);
        }
        match self.with_store(move |s| s.check_key(&key)).await? {
            KeyCheck::Valid {
                key_id,
                user,
                model_scope,
                own,
            } => Ok(Principal::User {
                user,
                key_id: Some(key_id),
                model_scope,
                session: false,
                own,
            }),
            KeyCheck::Unknown => Err(AuthError::InvalidKey),
            KeyCheck::Revoked => Err(AuthError::RevokedKey),
            KeyCheck::Expired => Err(AuthError::ExpiredKey),
            KeyCheck::UserDisabled => Err(AuthError::Disabled),
        }
    }

    /// Checks a session cookie; `csrf` must be given (and right) for state-changing requests.
    pub async fn session(&self, token: String, csrf: Option<String>) -> Result<Principal> {
        if token.is_empty() || token.len() > 256 {
            return Err(AuthError::BadSession);
        }
        let idle = self.cfg.session_idle_secs as i64;
        let need_csrf = csrf.is_some();
        let user = self
            .with_store(move |s| s.check_session(&token, idle, csrf.as_deref()))
            .await?;
        match user {
            Some(user) => Ok(Principal::User {
                own: user.own_password,
                user,
                key_id: None,
                model_scope: None,
                session: true,
            }),
            None if need_csrf => Err(AuthError::Csrf),
            None => Err(AuthError::BadSession),
        }
    }

    /// A password login from `addr`. Locked accounts and blocked addresses are refused before
    /// any hashing.
    pub async fn login(&self, name: String, password: String, addr: IpAddr) -> Result<NewSession> {
        let key = name.to_lowercase();
        lock(&self.throttle).check(&key, addr, &self.cfg)?;
        let user = {
            let _permit = self
                .hashing
                .acquire()
                .await
                .map_err(|e| AuthError::Internal(e.to_string()))?;
            // A too long password fails like a wrong one, without hashing megabytes.
            if password.len() > 1024 || name.len() > 64 {
                None
            } else {
                self.with_store(move |s| s.verify_password(&name, &password))
                    .await?
            }
        };
        let Some(user) = user else {
            let locked = lock(&self.throttle).failed(&key, addr, &self.cfg);
            if locked {
                log::warn!("an account was locked after too many failed logins (from {addr})");
            }
            return Err(AuthError::BadLogin);
        };
        lock(&self.throttle).succeeded(&key);
        let absolute = self.cfg.session_absolute_secs as i64;
        let uid = user.id;
        let (token, csrf) = self
            .with_store(move |s| s.create_session(uid, absolute))
            .await?;
        Ok(NewSession { user, token, csrf })
    }

    pub async fn logout(&self, token: String) -> Result<()> {
        self.with_store(move |s| s.end_session(&token)).await
    }

    /// Creates the first admin with the pairing code; the code then dies. The password is
    /// generated (and returned) when not given.
    pub async fn pair(
        &self,
        code: &str,
        name: String,
        password: Option<String>,
        addr: IpAddr,
    ) -> Result<(User, Option<String>)> {
        let throttle_key = "\0pairing";
        lock(&self.throttle).check(throttle_key, addr, &self.cfg)?;
        // Taken while checked, so two right answers at once cannot both pair.
        let taken = {
            let mut slot = lock(&self.pairing);
            let ok = slot.as_deref().is_some_and(|e| {
                same_secret(
                    normalise_code(e).as_bytes(),
                    normalise_code(code).as_bytes(),
                )
            });
            if ok {
                slot.take()
            } else {
                None
            }
        };
        if taken.is_none() {
            lock(&self.throttle).failed(throttle_key, addr, &self.cfg);
            return Err(AuthError::BadPairing);
        }
        let (user, generated) = match self.add_user(name, Role::Admin, None, password).await {
            Ok(x) => x,
            Err(e) => {
                // A refused name or password leaves the code usable.
                *lock(&self.pairing) = taken;
                return Err(e);
            }
        };
        log::info!("paired: first administrator (user #{}) created", user.id);
        Ok((user, generated))
    }

    /// Creates a user; generates (and returns) a password when none is given.
    pub async fn add_user(
        &self,
        name: String,
        role: Role,
        service: Option<String>,
        password: Option<String>,
    ) -> Result<(User, Option<String>)> {
        let generated = match password {
            Some(_) => None,
            None => Some(generate_password()?),
        };
        let pw = password.or_else(|| generated.clone()).unwrap_or_default();
        let user = self
            .with_store(move |s| {
                civia_store::check_password_policy(&pw)?;
                // Validate before creating, so a bad service creates nothing.
                if let Some(svc) = &service {
                    civia_store::check_service(svc)?;
                }
                s.add_user(&name, role, &pw)?;
                if service.is_some() {
                    s.set_service(&name, service.as_deref())?;
                }
                s.user(&name)
            })
            .await?;
        // Once the box has a user, whoever created it, the pairing code is over.
        *lock(&self.pairing) = None;
        Ok((user, generated))
    }

    /// Role default and override, for `/admin/users/{name}/quota`.
    pub async fn quota_view(&self, name: String) -> Result<(User, QuotaView)> {
        let since = day_start();
        let (user, (rpm, tokens), today) = self
            .with_store(move |s| {
                let u = s.user(&name)?;
                let q = s.quota(u.id)?;
                let today = s.tokens_since(u.id, since)?;
                Ok((u, q, today))
            })
            .await?;
        let base = self.role_quota(user.role);
        let view = QuotaView {
            rpm_override: rpm,
            tokens_override: tokens,
            effective: RoleQuota {
                requests_per_minute: rpm.unwrap_or(base.requests_per_minute),
                tokens_per_day: tokens.unwrap_or(base.tokens_per_day),
                concurrent_requests: base.concurrent_requests,
            },
            tokens_today: today,
        };
        Ok((user, view))
    }

    fn role_quota(&self, role: Role) -> RoleQuota {
        match role {
            Role::Agent => self.quotas.agent,
            Role::Admin => self.quotas.admin,
            // They cannot use the model at all.
            Role::Dpo | Role::Integrator => RoleQuota {
                requests_per_minute: 0,
                tokens_per_day: 0,
                concurrent_requests: 0,
            },
        }
    }

    /// Refuses a model request from a user who has not accepted the current charter, when
    /// the commune requires it (after the role check, so that a role without model access
    /// hears that first). Keys and sessions of users are checked; the local admin socket is
    /// not a user and passes.
    pub async fn charter_gate(&self, who: &Principal, required: bool) -> Result<()> {
        who.require(MODEL_USERS, "use the model")?;
        let Some(user) = who.user().filter(|_| required) else {
            return Ok(());
        };
        let uid = user.id;
        let (version, accepted) = self
            .with_store(move |s| {
                let v = s.charter()?.version;
                Ok((v, s.accepted_at(uid, v)?))
            })
            .await?;
        match accepted {
            Some(_) => Ok(()),
            None => Err(AuthError::CharterNotAccepted { version }),
        }
    }

    /// Erases the conversation history older than `retention_days`, once an hour, for the
    /// daemon's whole life (RGPD: history expires by default).
    pub async fn expire_history_hourly(self: Arc<Self>, retention_days: u32) {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        loop {
            tick.tick().await;
            let before = now() - i64::from(retention_days) * 86_400;
            match self.with_store(move |s| s.purge_history(before)).await {
                Ok((0, 0)) => {}
                Ok((c, m)) => log::info!("history: {c} conversations and {m} messages expired"),
                Err(e) => log::error!("history: expiry failed: {e}"),
            }
        }
    }

    /// Lets a model request through: role, then requests per minute, then tokens per day,
    /// then requests in flight. The returned guard holds the user's place until the request
    /// ends (None for the local admin, who is not a user).
    pub async fn admit(&self, who: &Principal) -> Result<Option<InFlight>> {
        who.require(MODEL_USERS, "use the model")?;
        let Some(user) = who.user() else {
            return Ok(None);
        };
        let uid = user.id;
        let since = day_start();
        let (rpm_o, tokens_o) = self.with_store(move |s| s.quota(uid)).await?;
        let base = self.role_quota(user.role);
        let rpm = rpm_o.unwrap_or(base.requests_per_minute);
        let tpd = tokens_o.unwrap_or(base.tokens_per_day);
        if tpd > 0 {
            let used = self.with_store(move |s| s.tokens_since(uid, since)).await?;
            if used >= tpd {
                return Err(AuthError::Quota {
                    what: "tokens per day",
                    retry_after: (since + 86_400 - civia_store::now()).max(1) as u64,
                });
            }
        }
        if rpm > 0 {
            let now = Instant::now();
            let mut rates = lock(&self.rates);
            if rates.len() > 10_000 {
                rates.retain(|_, w| w.back().is_some_and(|t| now.duration_since(*t) < MINUTE));
            }
            let window = rates.entry(uid).or_default();
            while window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= MINUTE)
            {
                window.pop_front();
            }
            if window.len() >= rpm as usize {
                let oldest = window.front().copied().unwrap_or(now);
                let wait = MINUTE.saturating_sub(now.duration_since(oldest));
                return Err(AuthError::Quota {
                    what: "requests per minute",
                    retry_after: wait.as_secs().max(1),
                });
            }
            window.push_back(now);
        }
        InFlight::take(&self.in_flight, uid, base.concurrent_requests).map(Some)
    }

    /// Writes a usage row in the background (metadata only); failures are logged.
    pub fn record_usage(&self, record: UsageRecord) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let result = match store.lock() {
                Ok(s) => s.record_usage(&record),
                Err(_) => return log::error!("usage not recorded: store lock poisoned"),
            };
            if let Err(e) = result {
                log::error!("usage not recorded: {e}");
            }
        });
    }
}

const MINUTE: Duration = Duration::from_secs(60);

/// A user's place among their requests in flight, given back when dropped.
#[derive(Debug)]
pub struct InFlight {
    counts: Arc<Mutex<HashMap<i64, u32>>>,
    uid: i64,
}

impl InFlight {
    /// Takes one of the user's `limit` places (0: unlimited), or refuses with a quota error.
    fn take(counts: &Arc<Mutex<HashMap<i64, u32>>>, uid: i64, limit: u32) -> Result<Self> {
        let mut c = lock(counts);
        let n = c.entry(uid).or_insert(0);
        if limit > 0 && *n >= limit {
            return Err(AuthError::Quota {
                what: "concurrent requests",
                retry_after: 1,
            });
        }
        *n += 1;
        Ok(Self {
            counts: counts.clone(),
            uid,
        })
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut c = lock(&self.counts);
        if let Some(n) = c.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                c.remove(&self.uid);
            }
        }
    }
}

/// Start of the current UTC day, in Unix seconds.
pub fn day_start() -> i64 {
    let t = civia_store::now();
    t - t.rem_euclid(86_400)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Constant-time comparison.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Crockford's base 32 (no I, L, O, U): 32 symbols, 5 bits each, read aloud without doubt.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

fn random_code(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::getrandom(&mut bytes).map_err(|e| AuthError::Internal(format!("random: {e}")))?;
    let mut out = String::new();
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            out.push('-');
        }
        out.push(ALPHABET[(*b & 31) as usize] as char);
    }
    Ok(out)
}

/// A generated password: 20 symbols of 5 bits (100 bits), in groups of 4.
pub fn generate_password() -> Result<String> {
    random_code(20)
}

/// Pairing codes are typed by hand: case, dashes and spaces do not matter, and the letters
/// Crockford's alphabet leaves out read as the digits they look like.
fn normalise_code(c: &str) -> String {
    c.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod service_tests;
