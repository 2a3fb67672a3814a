//! The LUKS2 volume, through `cryptsetup` and `systemd-cryptenroll` (the tools the boot uses,
//! so what is enrolled here is what unlocks at boot).
//!
//! Keys never touch persistent media: cryptsetup reads the key that authorizes an operation
//! on its standard input (`--key-file -`); a second key (the new one of `luksAddKey`, the
//! unlock key of `systemd-cryptenroll`) goes through a short-lived 0600 [`KeyFile`] that can
//! only be created on a RAM file system (tmpfs or ramfs, e.g. `/run`). Never on a command
//! line or in the environment.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde::Deserialize;

use crate::error::{io, ProvisionError, Result};

/// PBKDF for keyslots Civia creates: their keys carry 256 bits of entropy, so stretching adds
/// nothing (systemd-cryptenroll makes the same choice for TPM2 slots).
const PBKDF_ARGS: [&str; 4] = ["--pbkdf", "pbkdf2", "--pbkdf-force-iterations", "1000"];

/// A key in a 0600 file on a RAM file system, overwritten with zeros and removed on drop.
///
/// Refused anywhere else: a key written to a disk file stays in its freed blocks (and in the
/// flash translation layer of an SSD) whatever is done to the file afterwards.
pub struct KeyFile {
    path: PathBuf,
    len: usize,
}

impl KeyFile {
    pub fn new(dir: &Path, name: &str, key: &[u8]) -> Result<Self> {
        if !is_in_memory(dir)? {
            return Err(ProvisionError::Refused(format!(
                "{} is not a RAM file system (tmpfs, ramfs): refusing to write a key there",
                dir.display()
            )));
        }
        let path = dir.join(format!(".{name}.{}.tmpkey", std::process::id()));
        let _ = fs::remove_file(&path);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(io(&path))?;
        f.write_all(key).map_err(io(&path))?;
        Ok(Self {
            path,
            len: key.len(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for KeyFile {
    fn drop(&mut self) {
        // Overwritten in place (no truncation: the same pages), then removed.
        if let Ok(mut f) = OpenOptions::new().write(true).open(&self.path) {
            let _ = f.write_all(&vec![0u8; self.len]);
        }
        let _ = fs::remove_file(&self.path);
    }
}

/// Removes (after overwriting) the key files a process that no longer runs left in `dir`
/// (one killed between writing a key file and its drop).
pub fn sweep_key_files(dir: &Path) -> Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io(dir)(e)),
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_suffix(".tmpkey")
            .and_then(|n| n.rsplit('.').next())
        else {
            continue;
        };
        if Path::new("/proc").join(pid).exists() {
            continue;
        }
        let len = e.metadata().map(|m| m.len()).unwrap_or(0);
        drop(KeyFile {
            path: e.path(),
            len: usize::try_from(len).unwrap_or(0),
        });
    }
    Ok(())
}

/// `RAMFS_MAGIC` of `<linux/magic.h>` (not exported by the libc crate).
const RAMFS_MAGIC: i64 = 0x8584_58f6;

/// Whether `dir` lives on a RAM file system (tmpfs or ramfs): nothing written there reaches a
/// disk (the box has no swap).
pub fn is_in_memory(dir: &Path) -> Result<bool> {
    let c = CString::new(dir.as_os_str().as_bytes()).map_err(|e| ProvisionError::Format {
        what: "path",
        reason: format!("{}: {e}", dir.display()),
    })?;
    // SAFETY: an all-zero `statfs` is a valid value of this plain C struct (integers only).
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a NUL-terminated path that outlives the call, and `st` is a valid,
    // writable `statfs` the kernel fills in.
    let rc = unsafe { libc::statfs(c.as_ptr(), &mut st) };
    if rc != 0 {
        return Err(ProvisionError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    // f_type's integer type (and TMPFS_MAGIC's) differs between targets.
    #[allow(clippy::unnecessary_cast)]
    let (kind, tmpfs) = (st.f_type as i64, libc::TMPFS_MAGIC as i64);
    Ok(kind == tmpfs || kind == RAMFS_MAGIC)
}

/// How an operation that needs an existing key is authorized.
pub enum Auth<'a> {
    /// A passphrase of an active keyslot (the initial key, the recovery key), given to
    /// cryptsetup on its standard input.
    Passphrase(&'a [u8]),
    /// The volume key itself in a file (on a running box: from the open mapping).
    VolumeKey(&'a Path),
}

/// One token of the LUKS2 header.
#[derive(Clone, Debug, Deserialize, serde::Serialize)]
pub struct Token {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub keyslots: Vec<String>,
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

impl Token {
    pub fn slots(&self) -> Vec<u32> {
        self.keyslots
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect()
    }
}

/// The parts of the LUKS2 header that provisioning reads.
#[derive(Clone, Debug, Default)]
pub struct Header {
    pub keyslots: Vec<u32>,
    pub tokens: BTreeMap<u32, Token>,
}

impl Header {
    pub fn tokens_of(&self, kind: &str) -> Vec<(u32, &Token)> {
        self.tokens
            .iter()
            .filter(|(_, t)| t.kind == kind)
            .map(|(id, t)| (*id, t))
            .collect()
    }

    pub fn token_slots(&self) -> Vec<u32> {
        self.tokens.values().flat_map(Token::slots).collect()
    }
}

#[derive(Deserialize)]
struct RawHeader {
    #[serde(default)]
    keyslots: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    tokens: BTreeMap<String, Token>,
}

/// A LUKS2 volume (a block device, or a file in tests).
#[derive(Clone, Debug)]
pub struct Volume {
    path: PathBuf,
}

impl Volume {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn run(&self, program: &'static str, args: &[&str]) -> Result<Output> {
        self.run_input(program, args, None)
    }

    /// Runs `program`; `input` (a key) is written to its standard input, then closed.
    fn run_input(
        &self,
        program: &'static str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<Output> {
        let err = |message: String| ProvisionError::Command {
            program,
            args: args.join(" "),
            message,
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(e.to_string()))?;
        if let (Some(data), Some(mut stdin)) = (input, child.stdin.take()) {
            // A program that exits before reading everything (a wrong key file format) closes
            // the pipe: its exit status tells what went wrong, not the broken pipe.
            let _ = stdin.write_all(data);
        }
        child.wait_with_output().map_err(|e| err(e.to_string()))
    }

    fn run_ok(&self, program: &'static str, args: &[&str]) -> Result<String> {
        self.run_ok_input(program, args, None)
    }

    fn run_ok_input(
        &self,
        program: &'static str,
        args: &[&str],
        input: Option<&[u8]>,
    ) -> Result<String> {
        let out = self.run_input(program, args, input)?;
        if !out.status.success() {
            return Err(ProvisionError::Command {
                program,
                args: args.join(" "),
                message: format!(
                    "{}: {}",
                    out.status,
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            });
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    fn dev(&self) -> &str {
        self.path.to_str().unwrap_or_default()
    }

    pub fn is_luks(&self) -> Result<bool> {
        Ok(self
            .run("cryptsetup", &["isLuks", "--type", "luks2", self.dev()])?
            .status
            .success())
    }

    pub fn uuid(&self) -> Result<String> {
        Ok(self
            .run_ok("cryptsetup", &["luksUUID", self.dev()])?
            .trim()
            .to_string())
    }

    /// New LUKS2 header and volume key, `key` (on cryptsetup's standard input) in keyslot 0.
    pub fn format(&self, key: &[u8]) -> Result<()> {
        let mut args = vec![
            "luksFormat",
            "--type",
            "luks2",
            "-q",
            "--label",
            "civia-var",
        ];
        args.extend(PBKDF_ARGS);
        args.extend(["--key-slot", "0", "--key-file", "-", self.dev()]);
        self.run_ok_input("cryptsetup", &args, Some(key)).map(drop)
    }

    /// The keyslot `key` opens, if any (`cryptsetup open --test-passphrase`: no device-mapper
    /// needed).
    pub fn test_key(&self, key: &[u8], slot: Option<u32>) -> Result<Option<u32>> {
        let slot_s = slot.map(|s| s.to_string());
        let mut args = vec!["open", "--test-passphrase", "-v", "--key-file", "-"];
        if let Some(s) = &slot_s {
            args.extend(["--key-slot", s.as_str()]);
        }
        args.push(self.dev());
        let out = self.run_input("cryptsetup", &args, Some(key))?;
        if !out.status.success() {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let found = text.lines().find_map(|l| {
            l.strip_prefix("Key slot ")?
                .strip_suffix(" unlocked.")?
                .parse()
                .ok()
        });
        Ok(found.or(slot))
    }

    /// Adds the key in `new_key` (a [`KeyFile`]) in a new keyslot; returns the slot.
    pub fn add_key(&self, auth: &Auth<'_>, new_key: &KeyFile) -> Result<u32> {
        let before = self.header()?.keyslots;
        let mut args = vec!["luksAddKey", "-q"];
        args.extend(PBKDF_ARGS);
        let input = match auth {
            Auth::Passphrase(k) => {
                args.extend(["--key-file", "-"]);
                Some(*k)
            }
            Auth::VolumeKey(p) => {
                args.extend(["--volume-key-file", path_str(p)?]);
                None
            }
        };
        args.extend([self.dev(), path_str(new_key.path())?]);
        self.run_ok_input("cryptsetup", &args, input)?;
        let after = self.header()?.keyslots;
        after
            .into_iter()
            .find(|s| !before.contains(s))
            .ok_or_else(|| ProvisionError::Refused("luksAddKey added no keyslot".into()))
    }

    pub fn kill_slot(&self, slot: u32) -> Result<()> {
        let s = slot.to_string();
        self.run_ok("cryptsetup", &["luksKillSlot", "-q", self.dev(), &s])
            .map(drop)
    }

    /// Imports a token (JSON on cryptsetup's standard input).
    pub fn import_token(&self, token: &serde_json::Value) -> Result<()> {
        let args = ["token", "import", self.dev()];
        let err = |message: String| ProvisionError::Command {
            program: "cryptsetup",
            args: args.join(" "),
            message,
        };
        let mut child = Command::new("cryptsetup")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| err(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(token.to_string().as_bytes())
                .map_err(|e| err(e.to_string()))?;
        }
        let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
        if !out.status.success() {
            return Err(err(format!(
                "{}: {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    pub fn remove_token(&self, id: u32) -> Result<()> {
        let s = id.to_string();
        self.run_ok(
            "cryptsetup",
            &["token", "remove", "--token-id", &s, self.dev()],
        )
        .map(drop)
    }

    /// Wipes every keyslot (cryptsetup erase): the data is unrecoverable from here on.
    pub fn erase(&self) -> Result<()> {
        self.run_ok("cryptsetup", &["erase", "-q", self.dev()])
            .map(drop)
    }

    pub fn header(&self) -> Result<Header> {
        let text = self.run_ok(
            "cryptsetup",
            &["luksDump", "--dump-json-metadata", self.dev()],
        )?;
        let raw: RawHeader = serde_json::from_str(&text).map_err(|e| ProvisionError::Format {
            what: "LUKS2 JSON metadata",
            reason: e.to_string(),
        })?;
        Ok(Header {
            keyslots: raw.keyslots.keys().filter_map(|k| k.parse().ok()).collect(),
            tokens: raw
                .tokens
                .into_iter()
                .filter_map(|(k, t)| Some((k.parse().ok()?, t)))
                .collect(),
        })
    }

    /// Writes the volume key to `out` (authorized by a passphrase, on standard input).
    pub fn dump_volume_key(&self, key: &[u8], out: &Path) -> Result<()> {
        self.run_ok_input(
            "cryptsetup",
            &[
                "luksDump",
                "-q",
                "--dump-volume-key",
                "--volume-key-file",
                path_str(out)?,
                "--key-file",
                "-",
                self.dev(),
            ],
            Some(key),
        )
        .map(drop)
    }

    /// Enrolls a TPM2 token with systemd-cryptenroll: literal PCRs and, with a public key, a
    /// signed policy over `signed_pcrs` (systemd-measure signatures).
    pub fn enroll_tpm2(
        &self,
        unlock_key: &KeyFile,
        tcti: &str,
        literal_pcrs: &[u8],
        signed: Option<(&Path, &[u8])>,
    ) -> Result<()> {
        let unlock = format!("--unlock-key-file={}", path_str(unlock_key.path())?);
        let device = format!("--tpm2-device={tcti}");
        let pcrs = format!("--tpm2-pcrs={}", join_pcrs(literal_pcrs));
        let mut args = vec![unlock.as_str(), device.as_str(), pcrs.as_str()];
        let (key_arg, key_pcrs);
        if let Some((key, signed_pcrs)) = signed {
            key_arg = format!("--tpm2-public-key={}", path_str(key)?);
            key_pcrs = format!("--tpm2-public-key-pcrs={}", join_pcrs(signed_pcrs));
            args.extend([key_arg.as_str(), key_pcrs.as_str()]);
        }
        args.push(self.dev());
        self.run_ok("systemd-cryptenroll", &args).map(drop)
    }
}

fn join_pcrs(p: &[u8]) -> String {
    p.iter().map(u8::to_string).collect::<Vec<_>>().join("+")
}

fn path_str(p: &Path) -> Result<&str> {
    p.to_str().ok_or_else(|| ProvisionError::Format {
        what: "path",
        reason: format!("{} is not UTF-8", p.display()),
    })
}
