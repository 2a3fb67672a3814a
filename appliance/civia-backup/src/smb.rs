//! The mairie's NAS over SMB (`[backup] smb`): archives written, listed, renamed and removed
//! through Samba's own client, `smbclient`, one invocation a step; and the NAS password,
//! kept encrypted under a key derived from the box's sealed secret.
//!
//! Why `smbclient` rather than a crate or the kernel: it is the Samba project's client, kept
//! with the server most NAS run, with SMB 3 signing and encryption and NTLMv2; the pure-Rust
//! clients are young (0.x) and bring a large tree; the kernel's CIFS needs privileges and a
//! mount that civiad's user has not (and a module the box's kernel may lack). Each call runs
//! as civiad's user with an empty environment, no configuration file, no NetBIOS, SMB 2 or
//! newer, a per-operation timeout, and the NAS's address given (no name resolution). The
//! password reaches it on a pipe (`PASSWD_FD`), never on its command line, in its
//! environment or on disk. The share, folder and user come from the configuration, checked
//! there ([`civia_config::BackupConfig::smb_share`]): nothing of them can end a command.
//!
//! The password file (`backup/smb.credential` in the state directory) is XChaCha20-Poly1305
//! with a random nonce, its key given by civiad (derived from the device identity, sealed by
//! the TPM on a box), and the share's address, name and user as associated data: it opens
//! only on this box, and only for the share it was given for.

use crate::{BackupError, Result};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use civia_config::SmbShare;
use std::io::{self, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Where the NAS password is kept, encrypted, relative to the state directory.
pub const CREDENTIAL_FILE: &str = "backup/smb.credential";
const MAGIC: &[u8] = b"civia-smb-credential/1\n";
/// Seconds `smbclient` waits for one operation of the NAS.
const TIMEOUT_SECS: u32 = 30;
/// A call that ends or moves data no later than this, or is killed: `smbclient`'s own
/// timeout is the first guard, this one holds even if it wedges.
const STALL: Duration = Duration::from_secs(180);
/// Longest password kept.
pub const MAX_PASSWORD: usize = 256;

fn associated(share: &SmbShare) -> Vec<u8> {
    format!(
        "{}\n{}\n{}",
        share.display(),
        share.user,
        share.domain.as_deref().unwrap_or("")
    )
    .into_bytes()
}

/// Encrypts `password` for `share` with `key` (the file's bytes).
pub fn seal_password(key: &[u8; 32], share: &SmbShare, password: &str) -> Result<Vec<u8>> {
    // smbclient reads its password up to a line's end: a newline would cut it silently.
    if password.is_empty() || password.len() > MAX_PASSWORD || password.contains(['\0', '\n', '\r'])
    {
        return Err(BackupError::BadSmbPassword);
    }
    let mut nonce = [0u8; 24];
    getrandom::getrandom(&mut nonce).map_err(|e| BackupError::Io {
        path: PathBuf::from(CREDENTIAL_FILE),
        source: io::Error::other(e.to_string()),
    })?;
    let aad = associated(share);
    let sealed = XChaCha20Poly1305::new(key.into())
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: password.as_bytes(),
                aad: &aad,
            },
        )
        .map_err(|_| BackupError::BadSmbPassword)?;
    Ok([MAGIC, &nonce, &sealed].concat())
}

/// Decrypts what [`seal_password`] wrote; refused when the key or the share differ.
pub fn open_password(key: &[u8; 32], share: &SmbShare, file: &[u8]) -> Result<Zeroizing<String>> {
    let body = file
        .strip_prefix(MAGIC)
        .filter(|b| b.len() > 24)
        .ok_or(BackupError::SmbPasswordUnreadable)?;
    let (nonce, sealed) = body.split_at(24);
    let aad = associated(share);
    let plain = Zeroizing::new(
        XChaCha20Poly1305::new(key.into())
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: &aad,
                },
            )
            .map_err(|_| BackupError::SmbPasswordUnreadable)?,
    );
    String::from_utf8(plain.to_vec())
        .map(Zeroizing::new)
        .map_err(|_| BackupError::SmbPasswordUnreadable)
}

/// The nftables commands that open the box's firewall (image/build's `inet civia` table) to
/// exactly `share`'s address and port, for civiad's user only (the rule matches the sets
/// `backup4`/`backup6` and the socket's owner); without a share, the sets are emptied.
pub fn firewall_rules(share: Option<&SmbShare>) -> String {
    let mut out = String::from(
        "# The backup NAS's opening ([backup] smb; docs/backup.md), from `civia backup firewall`.\n\
         flush set inet civia backup4\nflush set inet civia backup6\n",
    );
    if let Some(s) = share {
        let set = if s.server.is_ipv4() {
            "backup4"
        } else {
            "backup6"
        };
        out.push_str(&format!(
            "add element inet civia {set} {{ {} . {} }}\n",
            s.server, s.port
        ));
    }
    out
}

/// One file of the NAS folder, as `smbclient`'s `ls` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub name: String,
    pub bytes: u64,
}

/// The NAS share with its password, ready to run `smbclient` against.
pub struct Smb<'a> {
    share: &'a SmbShare,
    password: Zeroizing<String>,
    program: PathBuf,
}

impl<'a> Smb<'a> {
    pub fn new(share: &'a SmbShare, password: Zeroizing<String>) -> Smb<'a> {
        Smb {
            share,
            password,
            program: PathBuf::from("smbclient"),
        }
    }

    fn fail(&self, step: &'static str, message: String) -> BackupError {
        BackupError::Smb {
            share: self.share.display(),
            step,
            message,
        }
    }

    /// `smbclient` for `command`, its password on a pipe at fd 3.
    fn command(&self, command: &str) -> Result<(Command, io::PipeReader)> {
        let s = self.share;
        let (reader, mut writer) = io::pipe().map_err(|e| self.fail("start", e.to_string()))?;
        // A password is far below a pipe's buffer: written whole before the child starts.
        writer
            .write_all(self.password.as_bytes())
            .map_err(|e| self.fail("start", e.to_string()))?;
        drop(writer);
        let mut cmd = Command::new(&self.program);
        let host = s.server.to_string();
        cmd.env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("PASSWD_FD", "3")
            .env("TZ", "UTC")
            .arg(format!("//{host}/{}", s.share))
            .args(["-I", &host, "-p", &s.port.to_string()])
            .arg(format!("--user={}", s.user))
            .arg("--use-kerberos=off")
            .arg("--configfile=/dev/null")
            .arg(format!("--timeout={TIMEOUT_SECS}"))
            .arg(format!(
                "--client-protection={}",
                if s.encrypt { "encrypt" } else { "sign" }
            ))
            .arg("--option=client min protocol=SMB2_02")
            .arg("--option=disable netbios=yes")
            .arg("--option=client use spnego principal=no");
        if let Some(d) = &s.domain {
            cmd.arg(format!("--workgroup={d}"));
        }
        if !s.folder.is_empty() {
            cmd.arg(format!("--directory={}", s.folder));
        }
        cmd.args(["-c", command]);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&reader);
        // SAFETY: the closure runs in the forked child before exec and makes only the
        // async-signal-safe fcntl and dup2 calls on a descriptor the child inherited (the
        // pipe's reading end, opened before the fork and kept alive by `reader` until the
        // child is spawned), then drops every capability civiad holds for the workers' jail
        // and sets no_new_privs (prctl, capset): smbclient parses what the NAS sends and
        // must hold nothing of civiad's privileges.
        unsafe {
            cmd.pre_exec(move || {
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(io::Error::last_os_error());
                }
                civia_base::process::drop_capabilities()?;
                civia_base::process::no_new_privs()
            });
        }
        Ok((cmd, reader))
    }

    /// Starts `command` with its input piped or not, its outputs read by threads (both at
    /// once: neither can fill and block it), under a [`Watchdog`].
    fn spawn(
        &self,
        step: &'static str,
        command: &str,
        input: bool,
        progress: Arc<AtomicU64>,
    ) -> Result<Running> {
        let (mut cmd, reader) = self.command(command)?;
        let child = cmd
            .stdin(if input { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| self.fail(step, format!("cannot run smbclient: {e}")));
        drop(reader);
        let mut child = child?;
        let drain = |pipe: Option<Box<dyn Read + Send>>| {
            std::thread::spawn(move || {
                let mut out = Vec::new();
                if let Some(p) = pipe {
                    let _ = p.take(1 << 20).read_to_end(&mut out);
                }
                out
            })
        };
        let stdout = drain(
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stderr = drain(
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        );
        let stdin = child.stdin.take();
        let child = Arc::new(Mutex::new(child));
        let watchdog = Watchdog::start(child.clone(), progress);
        Ok(Running {
            child,
            stdin,
            stdout,
            stderr,
            watchdog,
        })
    }

    /// Waits for `running`; its output, or the NAS's refusal (or the watchdog's).
    fn finish(&self, step: &'static str, mut running: Running) -> Result<String> {
        drop(running.stdin.take());
        // Polled, so that the watchdog can take the child meanwhile (a reaped child is never
        // signalled: `Child::kill` knows it has ended).
        let status = loop {
            let polled = running
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait();
            match polled {
                Ok(Some(status)) => break Ok(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(e) => break Err(e),
            }
        };
        let killed = running.watchdog.stop();
        let stdout = running.stdout.join().unwrap_or_default();
        let stderr = running.stderr.join().unwrap_or_default();
        let stdout = String::from_utf8_lossy(&stdout).into_owned();
        if killed {
            return Err(self.fail(
                step,
                format!("no answer for {} s: smbclient was stopped", STALL.as_secs()),
            ));
        }
        match status {
            Ok(s) if s.success() => Ok(stdout),
            Ok(_) => Err(self.fail(step, refusal(&stdout, &stderr))),
            Err(e) => Err(self.fail(step, e.to_string())),
        }
    }

    /// Runs `command` (no input) and returns its output, or the NAS's refusal.
    fn run(&self, step: &'static str, command: &str) -> Result<String> {
        let running = self.spawn(step, command, false, Arc::new(AtomicU64::new(0)))?;
        self.finish(step, running)
    }

    /// The files of the NAS folder (not its directories).
    pub fn list(&self) -> Result<Vec<Entry>> {
        self.list_with_space().map(|(entries, _)| entries)
    }

    /// The files of the NAS folder and the bytes free on its share, when the NAS tells.
    pub fn list_with_space(&self) -> Result<(Vec<Entry>, Option<u64>)> {
        let out = self.run("list", "ls")?;
        Ok((parse_ls(&out), parse_free(&out)))
    }

    /// Writes `name` in the NAS folder from what `write` puts into the pipe; `write`'s own
    /// error wins over the NAS's when both fail (the NAS then saw a closed pipe). Answers
    /// `write`'s value and the bytes it put into the pipe.
    pub fn put<T>(
        &self,
        name: &str,
        write: impl FnOnce(&mut dyn Write) -> Result<T>,
    ) -> Result<(T, u64)> {
        check_name(name)?;
        let progress = Arc::new(AtomicU64::new(0));
        let mut running = self.spawn("write", &format!("put - {name}"), true, progress.clone())?;
        let written = match running.stdin.take() {
            Some(stdin) => write(&mut Progressing {
                inner: stdin,
                progress: progress.clone(),
            }),
            None => Err(self.fail("write", "smbclient has no input".into())),
        };
        // stdin is closed (dropped above): smbclient ends the file and exits.
        let refused = self.finish("write", running).err();
        match (written, refused) {
            (Ok(v), None) => Ok((v, progress.load(Ordering::SeqCst))),
            (Ok(_), Some(e)) => Err(e),
            // The pipe broke because the NAS refused: its reason says more.
            (Err(BackupError::Io { source, .. }), Some(e))
                if source.kind() == io::ErrorKind::BrokenPipe =>
            {
                Err(e)
            }
            (Err(e), _) => Err(e),
        }
    }

    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        check_name(from)?;
        check_name(to)?;
        self.run("rename", &format!("rename {from} {to}"))
            .map(|_| ())
    }

    pub fn delete(&self, name: &str) -> Result<()> {
        check_name(name)?;
        self.run("delete", &format!("del {name}")).map(|_| ())
    }
}

/// An `smbclient` at work: the child, the threads reading its outputs, its watchdog.
struct Running {
    child: Arc<Mutex<Child>>,
    stdin: Option<std::process::ChildStdin>,
    stdout: std::thread::JoinHandle<Vec<u8>>,
    stderr: std::thread::JoinHandle<Vec<u8>>,
    watchdog: Watchdog,
}

/// Counts the bytes written into the pipe, for the watchdog.
struct Progressing<W> {
    inner: W,
    progress: Arc<AtomicU64>,
}

impl<W: Write> Write for Progressing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Kills a child that has neither ended nor taken any byte for [`STALL`].
struct Watchdog {
    done: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Watchdog {
    fn start(child: Arc<Mutex<Child>>, progress: Arc<AtomicU64>) -> Watchdog {
        let done = Arc::new(AtomicBool::new(false));
        let killed = Arc::new(AtomicBool::new(false));
        let (d, k) = (done.clone(), killed.clone());
        let thread = std::thread::Builder::new()
            .name("smbclient-watchdog".into())
            .spawn(move || {
                let (mut seen, mut since) = (progress.load(Ordering::Relaxed), Instant::now());
                while !d.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(200));
                    let now = progress.load(Ordering::Relaxed);
                    if now != seen {
                        (seen, since) = (now, Instant::now());
                    } else if since.elapsed() > STALL && !d.load(Ordering::SeqCst) {
                        k.store(true, Ordering::SeqCst);
                        let _ = child.lock().unwrap_or_else(PoisonError::into_inner).kill();
                        return;
                    }
                }
            })
            .ok();
        Watchdog {
            done,
            killed,
            thread,
        }
    }

    /// Stops watching; whether the child was killed for want of progress.
    fn stop(&mut self) -> bool {
        self.done.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.killed.load(Ordering::SeqCst)
    }
}

/// Only the names this crate makes reach `smbclient`'s commands: no spaces, quotes,
/// separators or wildcards.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(BackupError::Io {
            path: Path::new(name).to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "not an archive name"),
        });
    }
    Ok(())
}

/// What `smbclient` said when it failed: its `NT_STATUS_…` line when there is one.
fn refusal(stdout: &str, stderr: &[u8]) -> String {
    let stderr = String::from_utf8_lossy(stderr);
    let lines = stderr
        .lines()
        .chain(stdout.lines())
        .map(str::trim)
        // It reads its password twice and complains of the second, empty read.
        .filter(|l| !l.is_empty() && !l.starts_with("Error reading password"));
    let all: Vec<&str> = lines.collect();
    let line = all
        .iter()
        .find(|l| l.contains("NT_STATUS_"))
        .or(all.last())
        .map_or("smbclient failed without a message", |l| l);
    line.chars().take(300).collect()
}

/// The free bytes of `ls`'s last line: `N blocks of size S. M blocks available`.
fn parse_free(out: &str) -> Option<u64> {
    let line = out.lines().rev().find(|l| l.contains("blocks available"))?;
    let t: Vec<&str> = line.split_whitespace().collect();
    let size: u64 = t.get(4)?.trim_end_matches('.').parse().ok()?;
    let available: u64 = t.get(5)?.parse().ok()?;
    Some(size.saturating_mul(available))
}

/// The files of `smbclient`'s `ls` listing: `  NAME  ATTRS  SIZE  Www Mmm dd hh:mm:ss yyyy`.
/// Names with spaces are read to their first space: they are not this crate's archives.
fn parse_ls(out: &str) -> Vec<Entry> {
    let mut rows = Vec::new();
    for line in out.lines() {
        if !line.starts_with("  ") {
            continue;
        }
        let t: Vec<&str> = line.split_whitespace().collect();
        // The name, attributes (maybe none), the size and 5 words of date.
        if t.len() < 7 {
            continue;
        }
        let attrs = if t.len() >= 8 { t[t.len() - 7] } else { "" };
        let Ok(bytes) = t[t.len() - 6].parse::<u64>() else {
            continue;
        };
        if attrs.contains('D') || t[0] == "." || t[0] == ".." {
            continue;
        }
        rows.push(Entry {
            name: t[0].to_string(),
            bytes,
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share() -> SmbShare {
        SmbShare {
            server: "192.168.1.20".parse().unwrap(),
            port: 445,
            share: "Sauvegardes".into(),
            folder: "Civia".into(),
            user: "civia".into(),
            domain: None,
            encrypt: false,
        }
    }

    #[test]
    fn password_opens_only_with_its_key_and_share() {
        let key = [7u8; 32];
        let file = seal_password(&key, &share(), "mot de passe é").unwrap();
        assert!(
            !file.windows(5).any(|w| w == b"passe"),
            "the password is in clear"
        );
        assert_eq!(
            open_password(&key, &share(), &file).unwrap().as_str(),
            "mot de passe é"
        );
        // Another box's key, another share, another user: refused.
        assert!(open_password(&[8u8; 32], &share(), &file).is_err());
        let other = SmbShare {
            server: "192.168.1.66".parse().unwrap(),
            ..share()
        };
        assert!(open_password(&key, &other, &file).is_err());
        let other = SmbShare {
            user: "admin".into(),
            ..share()
        };
        assert!(open_password(&key, &other, &file).is_err());
        // Damaged or truncated.
        let mut bad = file.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(open_password(&key, &share(), &bad).is_err());
        assert!(open_password(&key, &share(), &file[..30]).is_err());
        // Two seals differ (random nonce).
        assert_ne!(
            file,
            seal_password(&key, &share(), "mot de passe é").unwrap()
        );
        assert!(seal_password(&key, &share(), "").is_err());
        assert!(seal_password(&key, &share(), &"x".repeat(MAX_PASSWORD + 1)).is_err());
    }

    #[test]
    fn ls_output_is_read() {
        let out = "  .                                   D        0  Tue Dec  8 01:02:10 2026
  ..                                  D        0  Tue Dec  8 01:02:10 2026
  civia-0a1b2c3d-20261208T010210Z.civia-backup      A  3000000  Tue Dec  8 01:02:10 2026
  Dossier partagé                     D        0  Tue Dec  8 01:02:10 2026
  notes.txt                           N       12  Tue Dec  8 01:02:10 2026
  x.partial                               4096  Tue Dec  8 01:02:10 2026

\t\t264212084 blocks of size 1024. 73734108 blocks available
";
        assert_eq!(parse_free(out), Some(73734108 * 1024));
        assert_eq!(parse_free("  x  A 1  Tue Dec  8 01:02:10 2026\n"), None);
        let rows = parse_ls(out);
        let names: Vec<_> = rows.iter().map(|e| (e.name.as_str(), e.bytes)).collect();
        assert_eq!(
            names,
            [
                ("civia-0a1b2c3d-20261208T010210Z.civia-backup", 3000000),
                ("notes.txt", 12),
                ("x.partial", 4096)
            ]
        );
    }

    #[test]
    fn only_plain_names_reach_commands() {
        assert!(check_name("civia-0a1b2c3d-20261208T010210Z.civia-backup.partial").is_ok());
        for bad in ["", "a b", "a;ls", "a\"b", "*", "a\\b", "a/b"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refusal_names_the_status() {
        let msg = refusal(
            "",
            b"Error reading password from file descriptor 3: empty password\nsession setup failed: NT_STATUS_LOGON_FAILURE\n",
        );
        assert_eq!(msg, "session setup failed: NT_STATUS_LOGON_FAILURE");
    }
}
