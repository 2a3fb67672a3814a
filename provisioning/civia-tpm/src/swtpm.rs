//! A software TPM (swtpm) on free local ports, for tests and development. Each instance has its
//! own state directory, so a new instance is a new TPM (new seeds). Killed on drop.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::{io, Result, TpmError};

pub struct Swtpm {
    child: Child,
    port: u16,
    _state: Option<tempfile_like::TempDir>,
    state_dir: PathBuf,
}

impl Swtpm {
    /// Starts swtpm with a fresh state in a new temporary directory.
    pub fn start() -> Result<Self> {
        let dir = tempfile_like::TempDir::new()?;
        let path = dir.path().to_path_buf();
        let mut s = Self::start_in(&path)?;
        s._state = Some(dir);
        Ok(s)
    }

    /// Starts swtpm on the state in `state_dir` (absolute; created if missing).
    pub fn start_in(state_dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let mut last = String::new();
        for _ in 0..20 {
            let port = free_port_pair()?;
            let mut child = Command::new("swtpm")
                .args(["socket", "--tpm2", "--tpmstate"])
                .arg(format!("dir={}", state_dir.display()))
                .args([
                    "--server",
                    &format!("type=tcp,port={port},bindaddr=127.0.0.1"),
                ])
                .args([
                    "--ctrl",
                    &format!("type=tcp,port={},bindaddr=127.0.0.1", port + 1),
                ])
                .args(["--flags", "not-need-init,startup-clear"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| TpmError::Io {
                    path: PathBuf::from("swtpm"),
                    source: std::io::Error::new(
                        e.kind(),
                        format!("{e} (install it: appliance/scripts/deps.sh)"),
                    ),
                })?;
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                // Someone listens: ours, unless another test's swtpm took the port first and
                // ours is about to exit for want of it (it does so within milliseconds).
                if TcpStream::connect(("127.0.0.1", port)).is_ok() && {
                    std::thread::sleep(Duration::from_millis(150));
                    matches!(child.try_wait(), Ok(None))
                } {
                    return Ok(Self {
                        child,
                        port,
                        _state: None,
                        state_dir: state_dir.to_path_buf(),
                    });
                }
                if let Ok(Some(status)) = child.try_wait() {
                    last = format!("swtpm exited with {status} (port {port} taken?)");
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last = "swtpm did not listen within 10 s".into();
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Err(TpmError::Io {
            path: PathBuf::from("swtpm"),
            source: std::io::Error::other(last),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// TCTI string for tss-esapi and systemd-cryptenroll.
    pub fn tcti(&self) -> String {
        format!("swtpm:host=127.0.0.1,port={}", self.port)
    }
}

impl Drop for Swtpm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port_pair() -> Result<u16> {
    for _ in 0..100 {
        let l = TcpListener::bind("127.0.0.1:0").map_err(io("127.0.0.1:0"))?;
        let port = l.local_addr().map_err(io("127.0.0.1:0"))?.port();
        if port < u16::MAX && TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return Ok(port);
        }
    }
    Err(TpmError::Io {
        path: PathBuf::from("127.0.0.1"),
        source: std::io::Error::other("no free pair of ports"),
    })
}

/// A tiny temporary directory (the crate does not depend on `tempfile` outside tests).
mod tempfile_like {
    use std::path::{Path, PathBuf};

    use crate::error::{io, Result};

    pub struct TempDir(PathBuf);

    impl TempDir {
        pub fn new() -> Result<Self> {
            let mut r = [0u8; 8];
            getrandom::getrandom(&mut r)
                .map_err(|e| crate::error::TpmError::Random(e.to_string()))?;
            let p = std::env::temp_dir().join(format!("civia-swtpm-{}", hex::encode(r)));
            std::fs::create_dir(&p).map_err(io(&p))?;
            Ok(Self(p))
        }
        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
