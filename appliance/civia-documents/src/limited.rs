//! Running one program as a child process under resource limits: the one implementation
//! behind the extraction child ([`crate::isolated`]) and the OCR programs ([`crate::ocr`]).
//!
//! Between fork and exec the child gets: an address-space limit (`RLIMIT_AS`), a CPU-time
//! limit (`RLIMIT_CPU`), no file it may write (`RLIMIT_FSIZE` 0, with `SIGXFSZ` ignored so
//! that a write fails with `EFBIG` instead of killing the program), no core dump, a few file
//! descriptors, `no_new_privs`, death with the thread that started it (`PR_SET_PDEATHSIG`),
//! an environment holding only what the caller names, and a process group of its own. Its input is written on its stdin and its stdout and stderr are read (each up to a
//! cap) on threads of their own, so a child that stops reading or floods its output cannot
//! block the wall clock; past the wall clock the whole group is killed.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// What to run and under which limits.
pub(crate) struct Spec<'a> {
    pub(crate) program: &'a Path,
    pub(crate) args: &'a [&'a OsStr],
    /// The child's whole environment.
    pub(crate) env: &'a [(&'a str, &'a str)],
    /// Killed past this.
    pub(crate) wall: Duration,
    /// `RLIMIT_AS`, in bytes.
    pub(crate) memory_bytes: u64,
    /// `RLIMIT_NOFILE`.
    pub(crate) max_files: u64,
    /// Most stdout bytes kept; more is reported as [`Finished::overflow`].
    pub(crate) max_stdout: u64,
}

/// A child that ended by itself.
pub(crate) struct Finished {
    pub(crate) status: ExitStatus,
    pub(crate) stdout: Vec<u8>,
    /// The child wrote more than [`Spec::max_stdout`] bytes (the rest was not read).
    pub(crate) overflow: bool,
    /// The first 16 KiB of its stderr.
    pub(crate) stderr: Vec<u8>,
}

impl Finished {
    /// The last non-empty line of stderr, for messages.
    pub(crate) fn last_error_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim()
            .to_owned()
    }

    /// "exited with status 1" or "killed by signal 9", and the last stderr line.
    pub(crate) fn describe(&self) -> String {
        use std::os::unix::process::ExitStatusExt;
        let last = self.last_error_line();
        match self.status.signal() {
            Some(sig) => format!("killed by signal {sig} ({last})"),
            None => format!("exited with {} ({last})", self.status),
        }
    }
}

/// Why no [`Finished`] came back.
#[derive(Debug)]
pub(crate) enum Failure {
    /// The program could not be started (missing, not executable...).
    Spawn(std::io::Error),
    /// Still running at the wall clock: killed.
    TimedOut,
    /// Waiting for the child failed (should not happen).
    Wait(std::io::Error),
}

/// Sets one resource limit (soft and hard) in the child.
fn limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let lim = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: setrlimit only reads the struct we pass; it is async-signal-safe, so it may run
    // between fork and exec.
    if unsafe { libc::setrlimit(resource, &lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Sends SIGKILL to the child's process group (the child and anything it started).
fn signal_group(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads
        // (`process_group(0)`); no memory is shared. The child is not reaped yet, so its pid
        // cannot name another group.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Kills the child's process group and reaps the child.
fn kill_group(child: &mut Child) {
    signal_group(child);
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether the child has ended, without reaping it (`waitid` with `WNOWAIT`).
fn exited(child: &Child) -> std::io::Result<bool> {
    let pid = libc::id_t::from(child.id());
    // SAFETY: a zeroed siginfo_t is a valid value for waitid to fill in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: waitid writes only into `info`, which lives for the call.
    let r = unsafe {
        libc::waitid(
            libc::P_PID,
            pid,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: with WNOHANG, si_pid is 0 when no child has changed state.
    Ok(unsafe { info.si_pid() } != 0)
}

/// Runs `spec` with `input` (the concatenation of its slices) on stdin.
pub(crate) fn run(spec: &Spec<'_>, input: &[&[u8]]) -> Result<Finished, Failure> {
    let (memory, files) = (spec.memory_bytes, spec.max_files);
    // SAFETY: getpid has no preconditions.
    let parent = unsafe { libc::getpid() };
    let cpu = spec.wall.as_secs().saturating_add(1);
    let mut cmd = Command::new(spec.program);
    cmd.args(spec.args)
        .env_clear()
        .envs(spec.env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own: on timeout the whole group is killed, helpers included.
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit,
    // signal, prctl and getppid (all async-signal-safe); it allocates nothing and touches no
    // lock (the errors it returns are raw OS error codes).
    unsafe {
        cmd.pre_exec(move || {
            limit(libc::RLIMIT_AS, memory)?;
            limit(libc::RLIMIT_CPU, cpu)?;
            limit(libc::RLIMIT_FSIZE, 0)?;
            limit(libc::RLIMIT_CORE, 0)?;
            limit(libc::RLIMIT_NOFILE, files)?;
            // An ignored signal stays ignored across exec: a write past RLIMIT_FSIZE fails
            // with EFBIG instead of killing the program.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            // No privilege gained through exec (setuid files, file capabilities); killed if
            // the calling thread ends (civiad crashing mid-OCR), including before this line.
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().map_err(Failure::Spawn)?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill_group(&mut child);
        return Err(Failure::Wait(std::io::Error::other(
            "the child's pipes are missing",
        )));
    };
    let cap = spec.max_stdout;
    std::thread::scope(|scope| {
        // Writing and reading on threads of their own (see the module documentation). Once
        // the child is gone (ended or killed) its pipes close and the threads end.
        let writer = scope.spawn(move || {
            for part in input {
                if stdin.write_all(part).is_err() {
                    break;
                }
            }
        });
        let reader = scope.spawn(move || {
            let mut out = Vec::new();
            let _ = stdout.take(cap.saturating_add(1)).read_to_end(&mut out);
            out
        });
        let errors = scope.spawn(move || {
            let mut out = Vec::new();
            let _ = stderr.take(16 * 1024).read_to_end(&mut out);
            out
        });
        let deadline = Instant::now() + spec.wall;
        loop {
            match exited(&child) {
                Ok(true) => break,
                Ok(false) if Instant::now() >= deadline => {
                    kill_group(&mut child);
                    return Err(Failure::TimedOut);
                }
                Ok(false) => std::thread::sleep(Duration::from_millis(5)),
                Err(e) => {
                    kill_group(&mut child);
                    return Err(Failure::Wait(e));
                }
            }
        }
        // The child has ended but is not reaped yet, so its pid still names its group: what
        // it left running (holding the pipes open) goes with it.
        signal_group(&child);
        let status = child.wait().map_err(Failure::Wait)?;
        let _ = writer.join();
        let mut stdout = reader.join().unwrap_or_default();
        let overflow = stdout.len() as u64 > cap;
        stdout.truncate(usize::try_from(cap).unwrap_or(usize::MAX));
        Ok(Finished {
            status,
            stdout,
            overflow,
            stderr: errors.join().unwrap_or_default(),
        })
    })
}
