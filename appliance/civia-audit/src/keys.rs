//! File-backed keys for development boxes and tests: the device signing key (seals segments
//! and checkpoints) and the pseudonym secret.
//!
//! On a real box both come from the TPM-sealed secret store instead; the daemon chooses. The
//! files hold exactly 32 bytes, mode 0600, are created without ever overwriting an existing
//! file (written to a temporary file, then published with `link(2)`, which fails if the name
//! exists), and are refused if group or others can access them.

use crate::fsutil::{io_err, sync_dir};
use crate::AuditError;
use ed25519_dalek::SigningKey;
use std::fs::{self, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The device's Ed25519 signing key, as a file holding its 32-byte seed.
#[derive(Debug)]
pub struct DeviceKey;

impl DeviceKey {
    /// Loads the seed at `path`, or creates it (0600) from the OS random generator.
    pub fn load_or_create(path: &Path) -> Result<SigningKey, AuditError> {
        Ok(SigningKey::from_bytes(&load_or_create_32(path)?))
    }
}

/// Loads the 32-byte pseudonym secret at `path`, or creates it (0600) from the OS random
/// generator. See [`Pseudonymizer`](crate::Pseudonymizer).
pub fn secret_load_or_create(path: &Path) -> Result<[u8; 32], AuditError> {
    load_or_create_32(path)
}

fn key_err(path: &Path, reason: impl Into<String>) -> AuditError {
    AuditError::Key {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn load_or_create_32(path: &Path) -> Result<[u8; 32], AuditError> {
    match load(path) {
        Err(AuditError::Io { source, .. }) if source.kind() == ErrorKind::NotFound => {}
        other => return other,
    }
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(|e| key_err(path, format!("no randomness: {e}")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| key_err(path, "not a file name"))?
        .to_string_lossy();
    let mut nonce = [0u8; 8];
    getrandom::getrandom(&mut nonce).map_err(|e| key_err(path, format!("no randomness: {e}")))?;
    let tmp = dir.join(format!(".{name}.{}.tmp", hex::encode(nonce)));
    let write_tmp = || -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&seed)?;
        f.sync_all()
    };
    if let Err(e) = write_tmp() {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(&tmp, e));
    }
    // link(2) publishes the complete file under its name, and fails if the name exists.
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_dir(dir)?;
            log::info!("created key file {}", path.display());
            Ok(seed)
        }
        // Someone else created it meanwhile: theirs wins, never overwrite.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(io_err(path, e)),
    }
}

fn load(path: &Path) -> Result<[u8; 32], AuditError> {
    let f = fs::File::open(path).map_err(|e| io_err(path, e))?;
    let meta = f.metadata().map_err(|e| io_err(path, e))?;
    if !meta.is_file() {
        return Err(key_err(path, "not a regular file"));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(key_err(
            path,
            format!("mode {mode:04o} lets others read it; expected 0600"),
        ));
    }
    let mut buf = Vec::with_capacity(33);
    f.take(33)
        .read_to_end(&mut buf)
        .map_err(|e| io_err(path, e))?;
    <[u8; 32]>::try_from(buf.as_slice())
        .map_err(|_| key_err(path, format!("holds {} bytes, expected 32", buf.len())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_then_load_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("device.key");
        let k1 = DeviceKey::load_or_create(&p).unwrap();
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let k2 = DeviceKey::load_or_create(&p).unwrap();
        assert_eq!(k1.to_bytes(), k2.to_bytes());
        let s = dir.path().join("pseudonym.secret");
        let a = secret_load_or_create(&s).unwrap();
        assert_eq!(a, secret_load_or_create(&s).unwrap());
        assert_ne!(a, k1.to_bytes());
        // Only the two key files remain (no temporary files).
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 2);
    }

    #[test]
    fn refuses_bad_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("short.key");
        fs::write(&p, [1u8; 31]).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            DeviceKey::load_or_create(&p),
            Err(AuditError::Key { .. })
        ));
        assert_eq!(fs::read(&p).unwrap().len(), 31, "never overwritten");
        let q = dir.path().join("open.key");
        fs::write(&q, [1u8; 32]).unwrap();
        fs::set_permissions(&q, fs::Permissions::from_mode(0o644)).unwrap();
        let err = secret_load_or_create(&q).unwrap_err().to_string();
        assert!(err.contains("0644"), "{err}");
    }
}
