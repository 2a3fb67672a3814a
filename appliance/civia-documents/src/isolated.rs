//! One extraction in a child process under resource limits.
//!
//! The parent ([`extract`]) starts the program it is given (civiad starts itself as
//! `civiad extract-document`) with an empty environment and these limits, set between fork
//! and exec:
//! - address space (`RLIMIT_AS`, [`Sandbox::memory_bytes`]): everything the parsers inflate
//!   or allocate, all entries and pages together — the total-inflate budget;
//! - CPU time (`RLIMIT_CPU`) and, from the parent, a wall clock ([`Sandbox::wall`]) after which
//!   the child is killed;
//! - no file may be written (`RLIMIT_FSIZE` 0), no core dump, a handful of descriptors.
//!
//! A child that is killed, runs out of memory or crashes is [`Error::Exhausted`]: the agent is
//! told the file is too complex, and nothing else on the box noticed.
//!
//! The protocol is written here (not a general IPC crate) because it is one request and one
//! answer: on stdin a little-endian `u32` length, that many bytes of JSON [`Request`], then the
//! document until end of file; on stdout one JSON [`Reply`].

use crate::{Error, ErrorKind, Extracted, Limits};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How to run the extraction process.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The program, and the arguments that make it call [`child_main`].
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Wall-clock budget of one extraction.
    pub wall: Duration,
    /// Address-space budget of the extraction process, in bytes.
    pub memory_bytes: u64,
}

/// What the parent sends before the document.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub hint: Option<String>,
    pub limits: Limits,
}

/// The child's one answer.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reply {
    Extracted(Extracted),
    Refused {
        kind: ErrorKind,
        message: String,
        french: String,
    },
}

fn failed(reason: impl Into<String>) -> Error {
    Error::Extractor {
        reason: reason.into(),
    }
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

/// Kills the child's process group (the child and anything it started) and reaps the child.
fn kill_group(child: &mut std::process::Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads
        // (`process_group(0)`); no memory is shared.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Extracts `bytes` in a child process under `sandbox`'s limits. Cheap refusals (empty,
/// too large) are answered here without a child.
pub fn extract(
    sandbox: &Sandbox,
    bytes: &[u8],
    hint: Option<&str>,
    limits: &Limits,
) -> Result<Extracted, Error> {
    crate::check_size(bytes, limits)?;
    let request = serde_json::to_vec(&Request {
        hint: hint.map(str::to_owned),
        limits: limits.clone(),
    })
    .map_err(|e| failed(format!("encoding the request: {e}")))?;
    let header_len = u32::try_from(request.len()).map_err(|_| failed("request too long"))?;
    let (memory, cpu) = (
        sandbox.memory_bytes,
        sandbox.wall.as_secs().saturating_add(1),
    );
    let mut cmd = Command::new(&sandbox.program);
    cmd.args(&sandbox.args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // A group of its own: on timeout the whole group is killed, helpers included.
        .process_group(0);
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit
    // (async-signal-safe); it allocates nothing and touches no lock.
    unsafe {
        cmd.pre_exec(move || {
            limit(libc::RLIMIT_AS, memory)?;
            limit(libc::RLIMIT_CPU, cpu)?;
            limit(libc::RLIMIT_FSIZE, 0)?;
            limit(libc::RLIMIT_CORE, 0)?;
            limit(libc::RLIMIT_NOFILE, 32)?;
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| failed(format!("starting {}: {e}", sandbox.program.display())))?;
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Err(failed("the child's pipes are missing"));
    };
    let mut input = Vec::with_capacity(4 + request.len() + bytes.len());
    input.extend_from_slice(&header_len.to_le_bytes());
    input.extend_from_slice(&request);
    input.extend_from_slice(bytes);
    // Writing and reading on threads of their own: a child that stops reading or floods its
    // output cannot block the wall clock below.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let cap = (limits.max_text_chars as u64).saturating_mul(4) + 64 * 1024;
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.take(cap).read_to_end(&mut out);
        out
    });
    let errors = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stderr.take(16 * 1024).read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + sandbox.wall;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() >= deadline => {
                kill_group(&mut child);
                let _ = (writer.join(), reader.join(), errors.join());
                return Err(Error::Exhausted {
                    reason: format!("still running after {} s", sandbox.wall.as_secs()),
                });
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                kill_group(&mut child);
                return Err(failed(format!("waiting for the child: {e}")));
            }
        }
    };
    let _ = writer.join();
    let out = reader.join().unwrap_or_default();
    let err = errors.join().unwrap_or_default();
    if !status.success() {
        use std::os::unix::process::ExitStatusExt;
        let stderr = String::from_utf8_lossy(&err);
        let last = stderr.lines().last().unwrap_or("").to_owned();
        return Err(Error::Exhausted {
            reason: match status.signal() {
                Some(sig) => format!("killed by signal {sig} ({last})"),
                None => format!("exited with {status} ({last})"),
            },
        });
    }
    match serde_json::from_slice::<Reply>(&out) {
        Ok(Reply::Extracted(x)) => Ok(x),
        Ok(Reply::Refused {
            kind,
            message,
            french,
        }) => Err(Error::Reported {
            kind,
            message,
            french,
        }),
        Err(e) => Err(failed(format!("unreadable answer from the child: {e}"))),
    }
}

/// The child's side: reads the request and the document on stdin, extracts, writes the reply
/// on stdout. Returns the process exit code.
pub fn child_main() -> i32 {
    let mut input = Vec::new();
    if let Err(e) = std::io::stdin().lock().read_to_end(&mut input) {
        eprintln!("extract-document: reading stdin: {e}");
        return 2;
    }
    let reply = match parse(&input) {
        Ok((request, document)) => {
            match crate::extract(document, request.hint.as_deref(), &request.limits) {
                Ok(x) => Reply::Extracted(x),
                Err(e) => Reply::Refused {
                    kind: e.kind(),
                    message: e.to_string(),
                    french: e.french(),
                },
            }
        }
        Err(why) => {
            eprintln!("extract-document: {why}");
            return 2;
        }
    };
    let mut stdout = std::io::stdout().lock();
    match serde_json::to_writer(&mut stdout, &reply).map(|()| stdout.flush()) {
        Ok(Ok(())) => 0,
        _ => 2,
    }
}

fn parse(input: &[u8]) -> Result<(Request, &[u8]), String> {
    let (len, rest) = input
        .split_first_chunk::<4>()
        .ok_or("the input is shorter than its header")?;
    let len = u32::from_le_bytes(*len) as usize;
    if rest.len() < len {
        return Err("the input is shorter than its header says".into());
    }
    let (head, document) = rest.split_at(len);
    let request = serde_json::from_slice(head).map_err(|e| format!("bad request: {e}"))?;
    Ok((request, document))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox(script: &str) -> Sandbox {
        Sandbox {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), script.into()],
            wall: Duration::from_secs(2),
            memory_bytes: 512 * 1024 * 1024,
        }
    }

    #[test]
    fn a_child_past_its_wall_clock_is_killed() {
        let t0 = Instant::now();
        let r = extract(&sandbox("sleep 30"), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Exhausted { .. })), "{r:?}");
        assert!(t0.elapsed() < Duration::from_secs(20));
    }

    #[test]
    fn a_child_that_crashes_or_babbles_is_a_clear_error() {
        let r = extract(&sandbox("kill -SEGV $$"), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Exhausted { .. })), "{r:?}");
        let r = extract(&sandbox("echo nonsense"), b"x", None, &Limits::default());
        assert!(matches!(r, Err(Error::Extractor { .. })), "{r:?}");
    }

    #[test]
    fn the_child_runs_under_the_limits_with_an_empty_environment() {
        // The shell reports its limits and environment as a refusal the parent decodes.
        let script = r#"cat >/dev/null; printf '{"refused":{"kind":"invalid","message":"%s %s %s","french":"x"}}' "$(ulimit -v)" "$(ulimit -f)" "$(env | grep -c .)""#;
        std::env::set_var("CIVIA_SECRET_FOR_TEST", "leak");
        match extract(&sandbox(script), b"x", None, &Limits::default()) {
            Err(Error::Reported { message, .. }) => {
                let v: Vec<&str> = message.split(' ').collect();
                assert_eq!(v[0], (512 * 1024).to_string(), "address space in KiB");
                assert_eq!(v[1], "0", "no file may be written");
                // sh sets PWD (and maybe SHLVL, _) itself; nothing is inherited.
                assert!(v[2].parse::<u32>().unwrap() <= 3, "environment: {message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_protocol_round_trips() {
        let req = serde_json::to_vec(&Request {
            hint: Some("a.txt".into()),
            limits: Limits::default(),
        })
        .unwrap();
        let mut input = (req.len() as u32).to_le_bytes().to_vec();
        input.extend_from_slice(&req);
        input.extend_from_slice(b"Bonjour");
        let (r, doc) = parse(&input).unwrap();
        assert_eq!((r.hint.as_deref(), doc), (Some("a.txt"), &b"Bonjour"[..]));
        assert!(parse(&input[..3]).is_err());
        assert!(parse(&[255, 255, 0, 0, b'{']).is_err());
    }
}
