//! Signed metadata. Every signed document travels in an [`Envelope`]: the exact bytes of the
//! signed JSON (kept as raw JSON, never re-serialized) and a list of signatures. A signature is
//! ed25519 over `"civia-bundle/v1 " + DOMAIN + "\n" + signed bytes`, DOMAIN being `root` or
//! `manifest`, so a signature made for one kind of document never verifies another.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::keys::{PublicKey, SecretKey};
use crate::{FormatError, Version};

pub const ROOT_TYPE: &str = "civia-root";
pub const MANIFEST_TYPE: &str = "civia-bundle-manifest";

/// Longest accepted lists, so hostile metadata cannot make verification expensive.
pub const MAX_KEYS: usize = 64;
pub const MAX_SIGNATURES: usize = 64;
pub const MAX_PAYLOADS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Domain {
    Root,
    Manifest,
}

impl Domain {
    fn tag(self) -> &'static str {
        match self {
            Domain::Root => "root",
            Domain::Manifest => "manifest",
        }
    }
    pub fn what(self) -> &'static str {
        match self {
            Domain::Root => "root metadata",
            Domain::Manifest => "bundle manifest",
        }
    }
}

/// The message a signature covers.
pub fn signing_message(domain: Domain, signed: &[u8]) -> Vec<u8> {
    let mut m = format!("civia-bundle/v1 {}\n", domain.tag()).into_bytes();
    m.extend_from_slice(signed);
    m
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SignatureEntry {
    pub keyid: String,
    pub sig: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    pub signed: Box<RawValue>,
    pub signatures: Vec<SignatureEntry>,
}

impl Envelope {
    /// Wraps a document, unsigned.
    pub fn new<T: Serialize>(doc: &T) -> Result<Self, FormatError> {
        let text = serde_json::to_string(doc).map_err(|e| FormatError::Malformed(e.to_string()))?;
        let signed =
            RawValue::from_string(text).map_err(|e| FormatError::Malformed(e.to_string()))?;
        Ok(Envelope {
            signed,
            signatures: Vec::new(),
        })
    }

    /// Adds (or replaces) `key`'s signature.
    pub fn sign(&mut self, domain: Domain, key: &SecretKey) {
        let keyid = key.public().key_id();
        let sig = key.sign(&signing_message(domain, self.signed.get().as_bytes()));
        self.signatures.retain(|s| s.keyid != keyid);
        self.signatures.push(SignatureEntry { keyid, sig });
    }

    /// The signed document, parsed but NOT verified.
    pub fn parse_unverified<T: DeserializeOwned>(&self) -> Result<T, FormatError> {
        serde_json::from_str(self.signed.get()).map_err(|e| FormatError::Malformed(e.to_string()))
    }

    /// Counts the distinct keys of `role` with a valid signature and checks the threshold.
    /// Signatures by keys outside the role are ignored (they may be the other root's keys
    /// during a rotation); an invalid signature by a role key is reported if the threshold
    /// is not met.
    pub fn verify_role(&self, domain: Domain, role: &Role) -> Result<usize, FormatError> {
        let what = domain.what();
        if self.signatures.is_empty() {
            return Err(FormatError::Unsigned { what });
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(FormatError::Malformed(format!(
                "{what} has more than {MAX_SIGNATURES} signatures"
            )));
        }
        let keys = role.public_keys()?;
        let msg = signing_message(domain, self.signed.get().as_bytes());
        let mut valid = BTreeSet::new();
        let mut bad: Option<String> = None;
        let mut known = false;
        for s in &self.signatures {
            let Some(k) = keys.iter().find(|k| k.key_id() == s.keyid) else {
                continue;
            };
            known = true;
            if k.verify(&msg, &s.sig) {
                valid.insert(s.keyid.clone());
            } else if bad.is_none() {
                bad = Some(s.keyid.clone());
            }
        }
        let needed = role.threshold as usize;
        if valid.len() >= needed {
            return Ok(valid.len());
        }
        if !known {
            let keyids = self
                .signatures
                .iter()
                .map(|s| short(&s.keyid))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(FormatError::UnknownKey { what, keyids });
        }
        if let Some(keyid) = bad {
            return Err(FormatError::BadSignature {
                what,
                keyid: short(&keyid),
            });
        }
        Err(FormatError::BelowThreshold {
            what,
            valid: valid.len(),
            needed,
        })
    }
}

fn short(keyid: &str) -> String {
    keyid.chars().take(16).collect()
}

/// A set of keys and how many of them must sign.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Role {
    /// Hex ed25519 public keys.
    pub keys: Vec<String>,
    pub threshold: u32,
}

impl Role {
    pub fn public_keys(&self) -> Result<Vec<PublicKey>, FormatError> {
        self.keys.iter().map(|k| PublicKey::from_hex(k)).collect()
    }

    pub fn validate(&self, name: &str) -> Result<(), FormatError> {
        let n = self.keys.len();
        if n == 0 || n > MAX_KEYS {
            return Err(FormatError::Malformed(format!(
                "role '{name}' must have 1 to {MAX_KEYS} keys"
            )));
        }
        let ids: BTreeSet<String> = self.public_keys()?.iter().map(PublicKey::key_id).collect();
        if ids.len() != n {
            return Err(FormatError::Malformed(format!(
                "role '{name}' lists a key twice"
            )));
        }
        if self.threshold == 0 || self.threshold as usize > n {
            return Err(FormatError::Malformed(format!(
                "role '{name}' threshold {} must be between 1 and its {n} keys",
                self.threshold
            )));
        }
        Ok(())
    }
}

/// Root metadata: the keys that may sign the next root (`root`) and the keys that may sign
/// bundles (`bundle`). Version 1 is built into the image; version N+1 must be signed by the
/// threshold of version N's root role and by its own.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RootMeta {
    #[serde(rename = "type")]
    pub kind: String,
    pub version: u64,
    /// Unix seconds.
    pub expires: i64,
    pub root: Role,
    pub bundle: Role,
}

impl RootMeta {
    pub fn validate(&self) -> Result<(), FormatError> {
        if self.kind != ROOT_TYPE {
            return Err(FormatError::Malformed(format!(
                "root metadata has type '{}', expected '{ROOT_TYPE}'",
                self.kind
            )));
        }
        if self.version == 0 {
            return Err(FormatError::Malformed("root version starts at 1".into()));
        }
        self.root.validate("root")?;
        self.bundle.validate("bundle")
    }
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BundleKind {
    /// An OS update: `/usr` image, its dm-verity hash tree, the UKI.
    System,
    /// A model: the GGUF weights and their dossier.
    Model,
}

impl fmt::Display for BundleKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BundleKind::System => "system",
            BundleKind::Model => "model",
        })
    }
}

impl BundleKind {
    /// Payload names a bundle of this kind carries, in this order.
    pub fn payload_names(self) -> &'static [&'static str] {
        match self {
            BundleKind::System => &["usr", "usr.verity", "uki"],
            BundleKind::Model => &["model.gguf", "dossier.json"],
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PayloadInfo {
    pub name: String,
    pub size: u64,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

/// The signed description of one bundle.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(rename = "type")]
    pub kind_tag: String,
    pub kind: BundleKind,
    /// The hardware model this bundle is for, e.g. `civia-box-g1`.
    pub compatible: String,
    pub version: Version,
    /// The lowest version a box that has blessed this bundle may ever accept again.
    pub floor: Version,
    /// Unix seconds: when the integrator built it (raises the box's reference time once installed).
    pub created: i64,
    /// Unix seconds: refused by a box whose reference time is later.
    pub expires: i64,
    /// System bundles: the dm-verity root hash of `usr` (hex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verity_root_hash: Option<String>,
    /// Model bundles: the model's id (directory name under the models directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    pub payloads: Vec<PayloadInfo>,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A name safe as a single path component.
pub fn is_safe_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s != "."
        && s != ".."
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

impl Manifest {
    pub fn validate(&self) -> Result<(), FormatError> {
        let bad = |m: String| Err(FormatError::Malformed(m));
        if self.kind_tag != MANIFEST_TYPE {
            return bad(format!(
                "manifest has type '{}', expected '{MANIFEST_TYPE}'",
                self.kind_tag
            ));
        }
        if !is_safe_name(&self.compatible) {
            return bad("compatible string must be [A-Za-z0-9._-], 1-64 chars".into());
        }
        if self.floor > self.version {
            return bad(format!(
                "floor {} is above the bundle's own version {}",
                self.floor, self.version
            ));
        }
        if self.expires <= self.created {
            return bad("manifest expires before it was created".into());
        }
        if self.payloads.len() > MAX_PAYLOADS {
            return bad("too many payloads".into());
        }
        let names: Vec<&str> = self.payloads.iter().map(|p| p.name.as_str()).collect();
        if names != self.kind.payload_names() {
            return bad(format!(
                "a {} bundle carries payloads {:?}, this one {:?}",
                self.kind,
                self.kind.payload_names(),
                names
            ));
        }
        for p in &self.payloads {
            if !is_hex(&p.sha256, 64) {
                return bad(format!("payload '{}' sha256 is not 64 hex digits", p.name));
            }
        }
        let total = self
            .payloads
            .iter()
            .try_fold(0u64, |acc, p| acc.checked_add(p.size));
        if total.is_none() {
            return bad("payload sizes overflow".into());
        }
        match self.kind {
            BundleKind::System => {
                let ok = self
                    .verity_root_hash
                    .as_deref()
                    .is_some_and(|h| is_hex(h, 64));
                if !ok || self.model_id.is_some() {
                    return bad(
                        "a system bundle needs a 64-hex verity_root_hash and no model_id".into(),
                    );
                }
            }
            BundleKind::Model => {
                let ok = self.model_id.as_deref().is_some_and(is_safe_name);
                if !ok || self.verity_root_hash.is_some() {
                    return bad(
                        "a model bundle needs a safe model_id and no verity_root_hash".into(),
                    );
                }
            }
        }
        Ok(())
    }

    pub fn payload(&self, name: &str) -> Option<&PayloadInfo> {
        self.payloads.iter().find(|p| p.name == name)
    }

    pub fn payload_total(&self) -> u64 {
        self.payloads.iter().map(|p| p.size).sum()
    }
}
