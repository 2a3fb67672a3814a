//! Signed files: the seal of a closed segment (`YYYY-MM.sig`) and the retention checkpoint
//! (`checkpoint.json`). Both sign canonical bytes with a domain tag, never the JSON text.

use crate::fsutil::io_err;
use crate::AuditError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// `YYYY-MM.sig`: what a closed segment contained when it was sealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentSeal {
    /// Segment file name, `YYYY-MM.jsonl`.
    pub segment: String,
    /// Seq of its first entry.
    pub first_seq: u64,
    /// Seq of its last entry.
    pub last_seq: u64,
    /// Hash of its last line (the next segment's first `prev`).
    pub last_hash: String,
    /// Hex SHA-256 of the whole segment file.
    pub sha256: String,
    /// Hex Ed25519 signature over [`SegmentSeal::signed_bytes`].
    pub signature: String,
    /// Hex Ed25519 public key of the signer.
    pub public_key: String,
}

impl SegmentSeal {
    /// `"civia-audit-segment\0" + segment + "\0" + sha256 + "\0" + last_hash + "\0" +
    /// first_seq + "\0" + last_seq` (decimal numbers).
    pub fn signed_bytes(&self) -> Vec<u8> {
        format!(
            "civia-audit-segment\0{}\0{}\0{}\0{}\0{}",
            self.segment, self.sha256, self.last_hash, self.first_seq, self.last_seq
        )
        .into_bytes()
    }

    pub(crate) fn sign(
        key: &SigningKey,
        segment: String,
        first_seq: u64,
        last_seq: u64,
        last_hash: String,
        sha256: String,
    ) -> SegmentSeal {
        let mut seal = SegmentSeal {
            segment,
            first_seq,
            last_seq,
            last_hash,
            sha256,
            signature: String::new(),
            public_key: hex::encode(key.verifying_key().as_bytes()),
        };
        seal.signature = hex::encode(key.sign(&seal.signed_bytes()).to_bytes());
        seal
    }

    /// Checks the signer is `key` and the signature is valid; the error says why not.
    pub(crate) fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        check_signature(&self.public_key, &self.signature, &self.signed_bytes(), key)
    }
}

/// `checkpoint.json`: where the chain resumes after older segments were purged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// First segment kept, `YYYY-MM.jsonl`.
    pub first_segment: String,
    /// Seq of its first entry.
    pub first_seq: u64,
    /// Hash of the last purged line: the `prev` of the first kept entry.
    pub prev_hash: String,
    /// Every segment purged so far, oldest first.
    pub purged: Vec<String>,
    /// Hex Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
    /// Hex Ed25519 public key of the signer.
    pub public_key: String,
}

impl Checkpoint {
    /// `"civia-audit-checkpoint\0" + first_segment + "\0" + first_seq + "\0" + prev_hash +
    /// "\0" + number of purged segments + ("\0" + purged segment name)*`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut s = format!(
            "civia-audit-checkpoint\0{}\0{}\0{}\0{}",
            self.first_segment,
            self.first_seq,
            self.prev_hash,
            self.purged.len()
        );
        for p in &self.purged {
            s.push('\0');
            s.push_str(p);
        }
        s.into_bytes()
    }

    pub(crate) fn sign(
        key: &SigningKey,
        first_segment: String,
        first_seq: u64,
        prev_hash: String,
        purged: Vec<String>,
    ) -> Checkpoint {
        let mut c = Checkpoint {
            first_segment,
            first_seq,
            prev_hash,
            purged,
            signature: String::new(),
            public_key: hex::encode(key.verifying_key().as_bytes()),
        };
        c.signature = hex::encode(key.sign(&c.signed_bytes()).to_bytes());
        c
    }

    /// Checks the signer is `key` and the signature is valid; the error says why not.
    pub(crate) fn check(&self, key: &VerifyingKey) -> Result<(), String> {
        check_signature(&self.public_key, &self.signature, &self.signed_bytes(), key)
    }
}

fn check_signature(
    public_key: &str,
    signature: &str,
    msg: &[u8],
    key: &VerifyingKey,
) -> Result<(), String> {
    let expected = hex::encode(key.as_bytes());
    if public_key != expected {
        return Err(format!(
            "signed by key {public_key}, not by the expected device key {expected}"
        ));
    }
    let sig = hex::decode(signature)
        .ok()
        .and_then(|b| <[u8; 64]>::try_from(b.as_slice()).ok())
        .ok_or("signature is not 64 hex-encoded bytes")?;
    key.verify_strict(msg, &Signature::from_bytes(&sig))
        .map_err(|_| "signature does not verify".to_string())
}

/// Reads and parses a small JSON file (a seal or the checkpoint).
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, AuditError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| AuditError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}
