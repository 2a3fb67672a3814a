//! The worker's half of its isolation from civiad: checking the jail civiad built, then the
//! seccomp filter.
//!
//! civiad (`civia-supervisor`'s jail, run between fork and exec, like Firecracker's jailer)
//! gives every worker its own uid without groups or capabilities, its own mount, network and
//! IPC namespaces (the state directory and `/run/civia` are empty there), `no_new_privs` and
//! a minimal environment. It writes what it promised in [`SANDBOX_ENV`] ([`Promise`]). The
//! worker, first thing in `main` and while it has one thread, checks that promise against
//! what the kernel says ([`enter`]): another uid than civiad's (unless the development
//! override), other namespaces, no capability. Then, like Firecracker's VMM, it installs its
//! own seccomp filter ([`filters`]) before it reads a byte of a model, a prompt or a
//! recording. Any failure is fatal: the worker exits and civiad reports why.
//!
//! The filter is a deny list (every engine, OpenMP and GPU driver keeps working): the
//! system calls that only an attacker needs kill the whole process (`SIGSYS`): tracing and
//! reading other processes, mounting and namespaces, changing credentials or capabilities,
//! BPF, perf, kernel modules and kexec, keyrings, `userfaultfd`, handles, clocks, swap,
//! reboot; the network ones fail with `EPERM` (sockets other than `AF_UNIX`, `connect`,
//! `bind`, `listen`, `accept`, io_uring which would bypass the filter); `clone3` fails with
//! `ENOSYS` so that the C library falls back to `clone`, whose namespace flags are checked.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The variable in which civiad hands a worker its [`Promise`] (JSON).
pub const SANDBOX_ENV: &str = "CIVIA_WORKER_SANDBOX";

/// Every variable a worker's environment may hold: civiad starts workers with exactly these
/// (when set), never its own environment (which holds `CIVIA_DEV_API_KEY`, the service
/// manager's variables...).
pub const WORKER_ENV: &[&str] = &["CIVIA_LOG_LEVEL", "RUST_LOG", "JOURNAL_STREAM", SANDBOX_ENV];

/// What civiad promises a worker about its jail; the worker checks it ([`enter`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promise {
    /// civiad's uid: the worker's must differ (unless `shared_uid`).
    pub supervisor_uid: u32,
    /// civiad's namespaces (`/proc/self/ns/mnt`, `net`, e.g. `mnt:[4026531841]`): the
    /// worker's must differ.
    pub supervisor_mnt_ns: String,
    pub supervisor_net_ns: String,
    /// `[sandbox] allow_shared_uid`: development only, the worker keeps civiad's uid.
    pub shared_uid: bool,
}

impl Promise {
    /// civiad's side: its own uid and namespaces.
    pub fn of_this_process(shared_uid: bool) -> Result<Self, SandboxError> {
        Ok(Self {
            // SAFETY: getuid has no preconditions and cannot fail.
            supervisor_uid: unsafe { libc::getuid() },
            supervisor_mnt_ns: namespace("mnt")?,
            supervisor_net_ns: namespace("net")?,
            shared_uid,
        })
    }

    /// The value of [`SANDBOX_ENV`].
    pub fn to_env(&self) -> Result<String, SandboxError> {
        Ok(serde_json::to_string(self)?)
    }
}

/// Why a worker refuses to run.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error(
        "not started inside civiad's sandbox ({SANDBOX_ENV} missing): a worker runs only as \
         civiad starts it"
    )]
    NotSandboxed,
    #[error("{SANDBOX_ENV} is not valid: {0}")]
    Promise(#[from] serde_json::Error),
    #[error("cannot read {path}: {source}")]
    Proc {
        path: &'static str,
        source: std::io::Error,
    },
    #[error("the worker runs as uid {uid}, civiad's own: it would hold civiad's files")]
    SameUid { uid: u32 },
    #[error("the worker runs as root")]
    Root,
    #[error("the worker shares civiad's {kind} namespace ({ns})")]
    SameNamespace { kind: &'static str, ns: String },
    #[error("the worker holds capabilities ({which} {mask})")]
    Capabilities { which: &'static str, mask: String },
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error("seccomp filter: {0}")]
    Seccomp(#[from] seccompiler::Error),
    #[error("seccomp filter: {0}")]
    SeccompBackend(#[from] seccompiler::BackendError),
}

/// This process's namespace of `kind` (`mnt`, `net`), as the kernel names it.
fn namespace(kind: &'static str) -> Result<String, SandboxError> {
    let path = match kind {
        "mnt" => "/proc/self/ns/mnt",
        _ => "/proc/self/ns/net",
    };
    std::fs::read_link(path)
        .map(|p| p.to_string_lossy().into_owned())
        .map_err(|source| SandboxError::Proc { path, source })
}

/// The worker's side, first thing in `main` (one thread): checks the jail civiad promised in
/// [`SANDBOX_ENV`], sets `no_new_privs` and installs the seccomp filters. Every error is
/// fatal to the worker.
pub fn enter() -> Result<(), SandboxError> {
    let text = std::env::var(SANDBOX_ENV).map_err(|_| SandboxError::NotSandboxed)?;
    let promise: Promise = serde_json::from_str(&text)?;
    check(&promise)?;
    // SAFETY: prctl with PR_SET_NO_NEW_PRIVS takes plain integers and only sets a flag.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(SandboxError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    for filter in filters()? {
        seccompiler::apply_filter(&filter)?;
    }
    Ok(())
}

/// The kernel's view of this process against civiad's promise.
fn check(promise: &Promise) -> Result<(), SandboxError> {
    // SAFETY: getuid and geteuid have no preconditions and cannot fail.
    let (uid, euid) = unsafe { (libc::getuid(), libc::geteuid()) };
    if uid == 0 || euid == 0 {
        return Err(SandboxError::Root);
    }
    if uid == promise.supervisor_uid && !promise.shared_uid {
        return Err(SandboxError::SameUid { uid });
    }
    for (kind, theirs) in [
        ("mnt", &promise.supervisor_mnt_ns),
        ("net", &promise.supervisor_net_ns),
    ] {
        let ns = namespace(kind)?;
        if &ns == theirs {
            return Err(SandboxError::SameNamespace { kind, ns });
        }
    }
    let path = "/proc/self/status";
    let status =
        std::fs::read_to_string(path).map_err(|source| SandboxError::Proc { path, source })?;
    for which in ["CapPrm", "CapEff", "CapAmb"] {
        let mask = status
            .lines()
            .find_map(|l| l.strip_prefix(which)?.strip_prefix(':'))
            .map(str::trim)
            .unwrap_or("missing");
        if mask.chars().any(|c| c != '0') {
            return Err(SandboxError::Capabilities {
                which,
                mask: mask.into(),
            });
        }
    }
    Ok(())
}

/// The system calls that kill the worker (`SIGSYS`): what only an attacker needs.
fn killed() -> Vec<i64> {
    let mut v = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_pidfd_getfd,
        libc::SYS_kcmp,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_setuid,
        libc::SYS_setgid,
        libc::SYS_setreuid,
        libc::SYS_setregid,
        libc::SYS_setresuid,
        libc::SYS_setresgid,
        libc::SYS_setgroups,
        libc::SYS_setfsuid,
        libc::SYS_setfsgid,
        libc::SYS_capset,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_userfaultfd,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_syslog,
        libc::SYS_fanotify_init,
        libc::SYS_mknodat,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_mknod,
        libc::SYS_uselib,
    ]);
    v
}

/// The system calls that fail with `EPERM`: the network, and io_uring (its operations would
/// not pass through this filter).
fn refused() -> Vec<i64> {
    vec![
        libc::SYS_connect,
        libc::SYS_bind,
        libc::SYS_listen,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
    ]
}

/// The namespace flags `clone` may not carry.
const CLONE_NAMESPACES: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

/// The worker's seccomp filters, each compiled to BPF: applied together, the kernel takes the
/// strictest answer (kill, then `EPERM`, then `ENOSYS`, else allow).
pub fn filters() -> Result<Vec<BpfProgram>, SandboxError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH)?;
    let unconditional = |calls: Vec<i64>| -> BTreeMap<i64, Vec<SeccompRule>> {
        calls.into_iter().map(|c| (c, Vec::new())).collect()
    };

    let mut kill = unconditional(killed());
    let mut clone_rules = Vec::new();
    for flag in CLONE_NAMESPACES {
        let flag = flag as u64;
        clone_rules.push(SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )?])?);
    }
    kill.insert(libc::SYS_clone, clone_rules);

    let mut eperm = unconditional(refused());
    eperm.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            libc::AF_UNIX as u64,
        )?])?],
    );
    eperm.insert(
        libc::SYS_socketpair,
        vec![SeccompRule::new(vec![SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            libc::AF_UNIX as u64,
        )?])?],
    );

    let enosys = unconditional(vec![libc::SYS_clone3]);

    let mut programs = Vec::new();
    for (rules, action) in [
        (kill, SeccompAction::KillProcess),
        (eperm, SeccompAction::Errno(libc::EPERM as u32)),
        (enosys, SeccompAction::Errno(libc::ENOSYS as u32)),
    ] {
        let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch)?;
        programs.push(filter.try_into()?);
    }
    Ok(programs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Runs the named test of this binary in a child process with `CIVIA_SANDBOX_CHILD` set;
    /// returns its exit status and output.
    fn in_child(test: &str) -> std::process::Output {
        Command::new(std::env::current_exe().unwrap())
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env("CIVIA_SANDBOX_CHILD", "1")
            .output()
            .unwrap()
    }

    fn is_child() -> bool {
        std::env::var_os("CIVIA_SANDBOX_CHILD").is_some()
    }

    fn apply_all() {
        // SAFETY: prctl with PR_SET_NO_NEW_PRIVS only sets a flag on this process.
        let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
        assert_eq!(rc, 0);
        for f in filters().unwrap() {
            seccompiler::apply_filter(&f).unwrap();
        }
    }

    #[test]
    fn filtered_child_probe() {
        if !is_child() {
            return;
        }
        apply_all();
        // What the engines need still works: threads (clone without namespace flags after
        // clone3's ENOSYS), memory, files, the socket pair to civiad.
        let t = std::thread::spawn(|| 40 + 2);
        assert_eq!(t.join().unwrap(), 42);
        let big = vec![7u8; 64 << 20];
        assert_eq!(big[12345], 7);
        assert!(std::fs::read("/proc/self/status").is_ok());
        assert!(std::os::unix::net::UnixStream::pair().is_ok());
        // The network is refused with EPERM.
        // SAFETY: socket takes plain integers; the result is checked and nothing is leaked
        // but a descriptor in a process about to exit.
        let tcp = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
        assert_eq!(tcp, -1);
        assert_eq!(
            std::io::Error::last_os_error().raw_os_error(),
            Some(libc::EPERM)
        );
        let unix = std::os::unix::net::UnixStream::connect("/run/civia/admin.sock");
        assert!(unix.is_err());
        println!("PROBE-ALLOWED-OK");
        // A forbidden call kills the process: nothing after it runs.
        let what = std::env::var("CIVIA_SANDBOX_FORBIDDEN").unwrap_or_default();
        // SAFETY: these calls take plain integers or null pointers; the filter stops them
        // before the kernel acts.
        unsafe {
            match what.as_str() {
                "ptrace" => {
                    libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0);
                }
                "mount" => {
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    );
                }
                "unshare" => {
                    libc::unshare(libc::CLONE_NEWUSER);
                }
                "setuid" => {
                    libc::setuid(0);
                }
                _ => {}
            }
        }
        println!("PROBE-SURVIVED");
    }

    #[test]
    fn the_filter_keeps_threads_memory_and_files_refuses_the_network_and_kills_on_forbidden_calls()
    {
        if is_child() {
            return;
        }
        let out = in_child("sandbox::tests::filtered_child_probe");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("PROBE-ALLOWED-OK"), "{text}");
        for forbidden in ["ptrace", "mount", "unshare", "setuid"] {
            let out = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--exact",
                    "sandbox::tests::filtered_child_probe",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env("CIVIA_SANDBOX_CHILD", "1")
                .env("CIVIA_SANDBOX_FORBIDDEN", forbidden)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                out.status.signal(),
                Some(libc::SIGSYS),
                "{forbidden} must kill the worker: {:?} {text}",
                out.status
            );
            assert!(text.contains("PROBE-ALLOWED-OK") && !text.contains("PROBE-SURVIVED"));
        }
    }

    #[test]
    fn a_worker_without_the_promise_or_in_civiads_namespaces_refuses() {
        if is_child() {
            return;
        }
        // No promise at all (the test runner's environment has none).
        assert!(matches!(enter(), Err(SandboxError::NotSandboxed)));
        // civiad's own uid and namespaces: every check fails, the first one says why.
        let mine = Promise::of_this_process(false).unwrap();
        let err = check(&mine).unwrap_err();
        assert!(
            matches!(
                err,
                SandboxError::Root
                    | SandboxError::SameUid { .. }
                    | SandboxError::SameNamespace { .. }
            ),
            "{err}"
        );
        let shared = Promise::of_this_process(true).unwrap();
        assert!(check(&shared).is_err(), "same namespaces are refused too");
    }
}
