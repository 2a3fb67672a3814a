//! civiad's half of a worker's isolation: the jail a worker is put in between `fork` and
//! `exec`, as Firecracker's jailer does for its VMM. The worker's half (checking the jail,
//! the seccomp filter) is `civia_ipc::sandbox`.
//!
//! The policy ([`SandboxPolicy`], from `[sandbox]`):
//!
//! - civiad may switch users (it runs as root, or holds `CAP_SETUID`, `CAP_SETGID` and
//!   `CAP_SYS_ADMIN`): the worker gets new mount, network and IPC namespaces, then drops to
//!   `worker_uid:worker_gid` with no supplementary group (so neither `disk` nor
//!   `civia-admin`) and no capability;
//! - otherwise, with `allow_shared_uid` (development only): a user namespace mapping civiad's
//!   uid to itself, and the same namespaces and mounts; the worker keeps civiad's uid;
//! - otherwise the worker is not started: [`JailError::NoOwnUid`] says why and names the
//!   override (fail closed).
//!
//! Mount layout inside the worker's namespace (propagation private): every hidden directory
//! (the state directory, `/run/civia`, the admin socket's directory, `[sandbox] hide`) is an
//! empty read-only tmpfs; the directories holding what the worker must read (its model file,
//! the speech spool) are bound back read-only at their place (at the configured path and at
//! the resolved one); the working directory is `/`. Then `no_new_privs`, and the worker's
//! environment is exactly `civia_ipc::sandbox::WORKER_ENV`.
//!
//! Everything the child does is prepared here in the parent ([`Jail::prepare`]): paths as
//! C strings, descriptors of what is bound back, the uid map; [`Jail::apply`] only makes
//! system calls, as a forked child of a threaded process must.

use civia_config::Config;
use civia_ipc::sandbox::{Promise, SANDBOX_ENV};
use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// How workers are isolated (`[sandbox]` plus the paths civiad hides).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxPolicy {
    pub worker_uid: u32,
    pub worker_gid: u32,
    /// Directories the worker sees as empty read-only tmpfs.
    pub hide: Vec<PathBuf>,
    /// Development only: an unprivileged civiad runs workers under its own uid.
    pub allow_shared_uid: bool,
    /// The worker's `CIVIA_LOG_LEVEL`.
    pub log_level: String,
    /// What the worker reads besides its model file (the speech worker: the spool
    /// directory), bound back read-only when under a hidden directory.
    pub expose: Vec<PathBuf>,
}

impl SandboxPolicy {
    /// The configured policy: hides the state directory, `/run/civia`, the admin socket's
    /// directory and `[sandbox] hide`.
    pub fn from_config(cfg: &Config) -> Self {
        let mut hide = vec![cfg.state_dir.clone(), PathBuf::from("/run/civia")];
        if let Some(dir) = cfg.admin_socket().parent() {
            hide.push(dir.to_path_buf());
        }
        hide.extend(cfg.sandbox.hide.iter().cloned());
        Self {
            worker_uid: cfg.sandbox.worker_uid,
            worker_gid: cfg.sandbox.worker_gid,
            hide,
            allow_shared_uid: cfg.sandbox.allow_shared_uid,
            log_level: cfg.log.level.clone(),
            expose: Vec::new(),
        }
    }
}

/// Why a worker cannot be jailed (it is then not started).
#[derive(Debug, thiserror::Error)]
pub enum JailError {
    #[error(
        "workers must run under their own uid, and civiad (uid {uid}) cannot give them one: it \
         is not root and lacks CAP_SETUID, CAP_SETGID and CAP_SYS_ADMIN. Run civiad as root \
         (workers then drop to [sandbox] worker_uid {worker_uid}), or on a development machine \
         only set [sandbox] allow_shared_uid = true"
    )]
    NoOwnUid { uid: u32, worker_uid: u32 },
    #[error("cannot open {path} to show it to the worker: {source}")]
    Expose {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("path {0} contains a NUL byte")]
    Nul(PathBuf),
    #[error("cannot describe civiad to its worker: {0}")]
    Promise(#[from] civia_ipc::sandbox::SandboxError),
    #[error("cannot read /proc/self/status: {0}")]
    Status(std::io::Error),
    #[error(
        "the worker must read {exposed}, which holds {hidden} that workers may not see: keep \
         model files and the spool directory out of directories that hold the state"
    )]
    ExposesHidden { exposed: PathBuf, hidden: PathBuf },
    #[error("{0} directories to bind back into a worker's jail, at most {MAX_BINDS}")]
    TooManyBinds(usize),
    #[error("cannot create the jail's error pipe: {0}")]
    Pipe(std::io::Error),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Root or the capabilities: the worker drops to its own uid.
    SwitchUser { uid: u32, gid: u32 },
    /// Development override: a user namespace mapping civiad's ids to themselves.
    SharedUid { uid: u32, gid: u32 },
}

/// A directory bound back read-only under a hidden one.
struct Bind {
    /// The resolved directory; the child opens it (`O_PATH`) in its new mount namespace
    /// before the tmpfs covers it, then binds from that descriptor (a descriptor opened
    /// before `unshare` names a mount of civiad's namespace, which the kernel refuses).
    source: CString,
    target: CString,
    /// The directories to create in the tmpfs, outermost first (the last is `target`).
    mkdirs: Vec<CString>,
    /// The source mount's atime flags, kept on the read-only remount.
    atime: libc::c_ulong,
}

/// Everything the child needs, prepared in the parent.
pub(crate) struct Jail {
    mode: Mode,
    hidden: Vec<CString>,
    binds: Vec<Bind>,
    uid_map: Vec<u8>,
    gid_map: Vec<u8>,
    /// The worker's whole environment.
    pub env: Vec<(String, String)>,
    /// The child writes the failed step's number here (close-on-exec).
    report: OwnedFd,
    /// The parent reads it when `spawn` fails.
    pub(crate) errors: OwnedFd,
}

/// The steps of [`Jail::apply`], named in errors.
const STEPS: [&str; 14] = [
    "unshare the namespaces",
    "write the user namespace's id maps",
    "make mounts private",
    "cover a hidden directory with a tmpfs",
    "create a mount point in the tmpfs",
    "bind a directory back",
    "make a bound directory read-only",
    "make a hidden directory's tmpfs read-only",
    "change directory to /",
    "drop the supplementary groups",
    "switch to the worker's gid",
    "switch to the worker's uid",
    "drop the capabilities",
    "set no_new_privs",
];

fn cstring(p: &Path) -> Result<CString, JailError> {
    CString::new(p.as_os_str().as_bytes()).map_err(|_| JailError::Nul(p.to_path_buf()))
}

// Capability numbers (linux/capability.h).
const CAP_SETGID: u32 = 6;
const CAP_SETUID: u32 = 7;
const CAP_SYS_ADMIN: u32 = 21;

/// Whether this process holds `CAP_SETUID`, `CAP_SETGID` and `CAP_SYS_ADMIN` in its
/// effective set.
fn may_switch_users() -> Result<bool, JailError> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } == 0 {
        return Ok(true);
    }
    let status = std::fs::read_to_string("/proc/self/status").map_err(JailError::Status)?;
    let eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or(0);
    let need = (1u64 << CAP_SETUID) | (1 << CAP_SETGID) | (1 << CAP_SYS_ADMIN);
    Ok(eff & need == need)
}

impl Jail {
    /// Prepares the jail of a worker that must read `exposed` (its model file, the speech
    /// spool directory): decides the mode, opens what is bound back, writes the promise.
    pub(crate) fn prepare(policy: &SandboxPolicy, exposed: &[PathBuf]) -> Result<Self, JailError> {
        // SAFETY: getuid and getgid have no preconditions and cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let mode = if may_switch_users()? {
            Mode::SwitchUser {
                uid: policy.worker_uid,
                gid: policy.worker_gid,
            }
        } else if policy.allow_shared_uid {
            Mode::SharedUid { uid, gid }
        } else {
            return Err(JailError::NoOwnUid {
                uid,
                worker_uid: policy.worker_uid,
            });
        };

        // Existing directories, resolved.
        let mut hidden: Vec<PathBuf> = policy
            .hide
            .iter()
            .filter_map(|p| p.canonicalize().ok())
            .filter(|p| p.is_dir() && p != Path::new("/"))
            .collect();

        // What the worker reads: the directory of each file, at the given and the resolved
        // path. A directory on the way that others may not cross (a 0700 home or temporary
        // directory above the state directory) is hidden too, so that the way to what is
        // bound back is made of the tmpfs's open directories.
        let mut wanted = Vec::new();
        for path in exposed {
            let dir = if path.is_dir() {
                path.clone()
            } else {
                match path.parent() {
                    Some(d) => d.to_path_buf(),
                    None => continue,
                }
            };
            let resolved = dir.canonicalize().map_err(|source| JailError::Expose {
                path: dir.clone(),
                source,
            })?;
            for target in [dir, resolved.clone()] {
                if !wanted.iter().any(|(t, _)| *t == target) {
                    wanted.push((target, resolved.clone()));
                }
            }
        }
        for (target, _) in &wanted {
            let closed = target.ancestors().skip(1).collect::<Vec<_>>();
            if let Some(a) = closed
                .into_iter()
                .rev()
                .find(|a| !hidden.iter().any(|h| a.starts_with(h)) && !others_may_cross(a))
            {
                hidden.push(a.to_path_buf());
            }
        }
        hidden.sort();
        hidden.dedup();
        let outer: Vec<PathBuf> = hidden
            .iter()
            .filter(|p| !hidden.iter().any(|o| o != *p && p.starts_with(o)))
            .cloned()
            .collect();

        let mut binds = Vec::new();
        let mut targets: Vec<PathBuf> = Vec::new();
        for (target, resolved) in wanted {
            {
                let Some(under) = outer.iter().find(|h| target.starts_with(h)) else {
                    continue;
                };
                if targets.contains(&target) {
                    continue;
                }
                targets.push(target.clone());
                let mut mkdirs = Vec::new();
                let mut at = under.clone();
                if let Ok(rest) = target.strip_prefix(under) {
                    for part in rest.components() {
                        at.push(part);
                        mkdirs.push(cstring(&at)?);
                    }
                }
                binds.push(Bind {
                    source: cstring(&resolved)?,
                    target: cstring(&target)?,
                    mkdirs,
                    atime: atime_flags(&open_path(&resolved)?),
                });
            }
        }

        let promise = Promise::of_this_process(matches!(mode, Mode::SharedUid { .. }))?;
        let mut env = vec![
            ("CIVIA_LOG_LEVEL".to_string(), policy.log_level.clone()),
            (SANDBOX_ENV.to_string(), promise.to_env()?),
        ];
        for name in ["RUST_LOG", "JOURNAL_STREAM"] {
            if let Ok(v) = std::env::var(name) {
                env.push((name.to_string(), v));
            }
        }

        // Binding back a directory that holds a hidden one would show it again.
        for target in &targets {
            if let Some(h) = hidden.iter().find(|h| h.starts_with(target)) {
                return Err(JailError::ExposesHidden {
                    exposed: target.clone(),
                    hidden: h.clone(),
                });
            }
        }
        if binds.len() > MAX_BINDS {
            return Err(JailError::TooManyBinds(binds.len()));
        }
        let (errors, report) = pipe()?;
        Ok(Self {
            mode,
            hidden: outer.iter().map(|p| cstring(p)).collect::<Result<_, _>>()?,
            binds,
            uid_map: format!("{uid} {uid} 1\n").into_bytes(),
            gid_map: format!("{gid} {gid} 1\n").into_bytes(),
            env,
            report,
            errors,
        })
    }

    /// Builds the jail around the calling process: the forked child, before `exec`.
    ///
    /// # Safety
    /// Call only in a child between `fork` and `exec` (a `pre_exec` closure): it changes the
    /// process's namespaces, mounts and credentials for good. It makes only system calls
    /// (async-signal-safe) on data prepared by [`Jail::prepare`].
    pub(crate) unsafe fn apply(&self) -> std::io::Result<()> {
        let mut step = 0usize;
        // SAFETY: the caller guarantees we are the single-threaded child before exec; every
        // pointer passed below is a NUL-terminated string or buffer owned by `self`, alive
        // for the whole call.
        let result = unsafe { self.steps(&mut step) };
        if result.is_err() {
            let code = [step as u8];
            // SAFETY: write to a pipe we own, from a buffer on our stack.
            unsafe { libc::write(self.report.as_raw_fd(), code.as_ptr().cast(), 1) };
        }
        result
    }

    /// # Safety
    /// As [`Jail::apply`].
    unsafe fn steps(&self, step: &mut usize) -> std::io::Result<()> {
        let fail = || Err(std::io::Error::last_os_error());
        let null = std::ptr::null::<libc::c_char>();
        let ns = libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWIPC;
        // SAFETY: for every call below: plain system calls on integers, on strings owned by
        // `self` or static C string literals, and on buffers on this stack; see `apply`.
        unsafe {
            match self.mode {
                Mode::SwitchUser { .. } => {
                    if libc::unshare(ns) != 0 {
                        return fail();
                    }
                }
                Mode::SharedUid { .. } => {
                    if libc::unshare(ns | libc::CLONE_NEWUSER) != 0 {
                        return fail();
                    }
                    *step = 1;
                    write_file(c"/proc/self/setgroups", b"deny")?;
                    write_file(c"/proc/self/uid_map", &self.uid_map)?;
                    write_file(c"/proc/self/gid_map", &self.gid_map)?;
                }
            }
            *step = 2;
            // The mount points made below are 0755 whatever civiad's umask (0077 on a box).
            libc::umask(0o022);
            if libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return fail();
            }
            // Handles on what is bound back, taken in this namespace before it is covered.
            // At most MAX_BINDS (checked by `prepare`); no allocation here.
            let mut handles = [-1; MAX_BINDS];
            for (bind, handle) in self.binds.iter().zip(handles.iter_mut()) {
                *step = 5;
                *handle = libc::open(
                    bind.source.as_ptr(),
                    libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
                );
                if *handle < 0 {
                    return fail();
                }
            }
            let hide_flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
            for dir in &self.hidden {
                *step = 3;
                if libc::mount(
                    c"tmpfs".as_ptr(),
                    dir.as_ptr(),
                    c"tmpfs".as_ptr(),
                    hide_flags,
                    c"mode=0755,size=64k".as_ptr().cast(),
                ) != 0
                {
                    return fail();
                }
            }
            for (bind, handle) in self.binds.iter().zip(handles) {
                *step = 4;
                for d in &bind.mkdirs {
                    if libc::mkdir(d.as_ptr(), 0o755) != 0
                        && std::io::Error::last_os_error().raw_os_error() != Some(libc::EEXIST)
                    {
                        return fail();
                    }
                }
                *step = 5;
                let mut name = [0u8; 32];
                fd_path(handle, &mut name);
                if libc::mount(
                    name.as_ptr().cast(),
                    bind.target.as_ptr(),
                    null,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
                {
                    return fail();
                }
                *step = 6;
                if libc::mount(
                    null,
                    bind.target.as_ptr(),
                    null,
                    libc::MS_BIND
                        | libc::MS_REMOUNT
                        | libc::MS_RDONLY
                        | libc::MS_NOSUID
                        | libc::MS_NODEV
                        | bind.atime,
                    std::ptr::null(),
                ) != 0
                {
                    return fail();
                }
            }
            for dir in &self.hidden {
                *step = 7;
                if libc::mount(
                    null,
                    dir.as_ptr(),
                    null,
                    libc::MS_REMOUNT | libc::MS_RDONLY | hide_flags,
                    std::ptr::null(),
                ) != 0
                {
                    return fail();
                }
            }
            *step = 8;
            if libc::chdir(c"/".as_ptr()) != 0 {
                return fail();
            }
            if let Mode::SwitchUser { uid, gid } = self.mode {
                *step = 9;
                if libc::setgroups(0, std::ptr::null()) != 0 {
                    return fail();
                }
                *step = 10;
                if libc::setresgid(gid, gid, gid) != 0 {
                    return fail();
                }
                *step = 11;
                if libc::setresuid(uid, uid, uid) != 0 {
                    return fail();
                }
            }
            *step = 12;
            civia_base::process::drop_capabilities()?;
            *step = 13;
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return fail();
            }
        }
        Ok(())
    }

    /// After a failed spawn: the step that failed, when the child got that far.
    pub(crate) fn failed_step(&self) -> Option<&'static str> {
        let mut code = [0u8; 1];
        // SAFETY: a non-blocking read of one byte from a pipe we own into our buffer.
        let n = unsafe { libc::read(self.errors.as_raw_fd(), code.as_mut_ptr().cast(), 1) };
        (n == 1).then(|| STEPS.get(code[0] as usize).copied().unwrap_or("set up"))
    }
}

/// Most directories bound back into one worker's jail.
const MAX_BINDS: usize = 16;

/// Writes `/proc/self/fd/<fd>` NUL-terminated into `out`, without allocating.
fn fd_path(fd: i32, out: &mut [u8; 32]) {
    let prefix = b"/proc/self/fd/";
    out[..prefix.len()].copy_from_slice(prefix);
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd.unsigned_abs(), 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        out[prefix.len() + i] = digits[len - 1 - i];
    }
    out[prefix.len() + len] = 0;
}

/// Writes `data` to `path` (a /proc file) with system calls only.
///
/// # Safety
/// As [`Jail::apply`].
unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
    // SAFETY: open/write/close on a NUL-terminated path and a buffer we own.
    unsafe {
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let n = libc::write(fd, data.as_ptr().cast(), data.len());
        libc::close(fd);
        if n != data.len() as isize {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether users other than the owner and group may cross `dir` (`o+x`); an unreadable
/// directory counts as closed.
fn others_may_cross(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
}

/// Opens `dir` with `O_PATH` (close-on-exec): a handle to bind from once it is covered.
fn open_path(dir: &Path) -> Result<OwnedFd, JailError> {
    let c = cstring(dir)?;
    // SAFETY: open on a NUL-terminated path we own; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(JailError::Expose {
            path: dir.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    // SAFETY: `fd` was just opened and is owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The atime flags of the mount holding `fd`, which a read-only remount must keep (a user
/// namespace may not change them).
fn atime_flags(fd: &OwnedFd) -> libc::c_ulong {
    // SAFETY: all-zero is a valid statvfs, which fstatvfs fills in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: fstatvfs writes into the struct we own.
    if unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) } != 0 {
        return 0;
    }
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
    ] {
        if st.f_flag & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    flags
}

/// A pipe: (read end non-blocking, write end), both close-on-exec.
fn pipe() -> Result<(OwnedFd, OwnedFd), JailError> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into the array we own; the result is checked.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(JailError::Pipe(std::io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(hide: Vec<PathBuf>) -> SandboxPolicy {
        SandboxPolicy {
            worker_uid: 60600,
            worker_gid: 60600,
            hide,
            allow_shared_uid: false,
            log_level: "info".into(),
            expose: Vec::new(),
        }
    }

    #[test]
    fn the_policy_hides_the_state_dir_run_civia_and_the_admin_socket_dir() {
        let cfg = Config::from_toml(
            "state_dir = \"/var/lib/civia\"\n[model]\npath = \"/m.gguf\"\n[admin]\nsocket = \"/run/civia/admin.sock\"\n",
        )
        .unwrap();
        let p = SandboxPolicy::from_config(&cfg);
        for dir in ["/var/lib/civia", "/run/civia", "/state", "/etc/civia"] {
            assert!(p.hide.contains(&PathBuf::from(dir)), "{dir}: {:?}", p.hide);
        }
        assert_eq!((p.worker_uid, p.worker_gid), (60600, 60600));
        assert!(!p.allow_shared_uid);
    }

    #[test]
    fn descriptor_paths_are_written_without_allocating() {
        for (fd, want) in [
            (0, "/proc/self/fd/0"),
            (7, "/proc/self/fd/7"),
            (1234, "/proc/self/fd/1234"),
        ] {
            let mut out = [0xffu8; 32];
            fd_path(fd, &mut out);
            let end = out.iter().position(|b| *b == 0).unwrap();
            assert_eq!(std::str::from_utf8(&out[..end]).unwrap(), want);
        }
    }

    #[test]
    fn exposed_files_under_a_hidden_dir_are_bound_back_at_both_paths() {
        let dir = tempfile::tempdir().unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = dir.path().join("state");
        let real = state.join("models/m/1.0");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("model.gguf"), b"GGUF").unwrap();
        std::os::unix::fs::symlink("1.0", state.join("models/m/current")).unwrap();
        let outside = dir.path().join("elsewhere.gguf");
        std::fs::write(&outside, b"GGUF").unwrap();
        let jail = Jail::prepare(
            &policy(vec![
                state.clone(),
                state.join("spool"),
                "/nonexistent".into(),
            ]),
            &[state.join("models/m/current/model.gguf"), outside],
        );
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            assert!(matches!(jail, Err(JailError::NoOwnUid { .. })));
            return;
        }
        let jail = jail.unwrap();
        let state = state.canonicalize().unwrap();
        assert_eq!(jail.hidden, vec![cstring(&state).unwrap()]);
        let targets: Vec<_> = jail.binds.iter().map(|b| b.target.clone()).collect();
        assert_eq!(
            targets,
            vec![
                cstring(&dir.path().join("state/models/m/current")).unwrap(),
                cstring(&state.join("models/m/1.0")).unwrap(),
            ]
        );
        let names: Vec<_> = jail.env.iter().map(|(k, _)| k.as_str()).collect();
        assert!(names.contains(&SANDBOX_ENV) && !names.contains(&"CIVIA_DEV_API_KEY"));

        // A directory others cannot cross on the way is hidden too (the way back is the
        // tmpfs's); exposing a directory that holds the state is refused.
        let closed = dir.path().join("closed");
        std::fs::create_dir_all(closed.join("inner/spool")).unwrap();
        std::fs::set_permissions(&closed, std::fs::Permissions::from_mode(0o700)).unwrap();
        let jail =
            Jail::prepare(&policy(vec![state.clone()]), &[closed.join("inner/spool")]).unwrap();
        assert!(jail
            .hidden
            .contains(&cstring(&closed.canonicalize().unwrap()).unwrap()));
        let holder = dir.path().join("holder");
        std::fs::create_dir_all(holder.join("state")).unwrap();
        let refused = Jail::prepare(
            &policy(vec![holder.clone(), holder.join("state")]),
            &[holder.join("m.gguf")],
        );
        assert!(
            matches!(refused, Err(JailError::ExposesHidden { .. })),
            "{:?}",
            refused.err()
        );
    }
}
