//! ed25519 keys. A key's id is the lower-case hex SHA-256 of its 32-byte public key.
//! Files: a secret key is JSON `{"type": "civia-ed25519-secret", "secret": HEX32}`, a public
//! key `{"type": "civia-ed25519-public", "public": HEX32}`.

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::{sha256_hex, FormatError};

pub type KeyId = String;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

pub struct SecretKey(SigningKey);

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SecretFile {
    #[serde(rename = "type")]
    kind: String,
    secret: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PublicFile {
    #[serde(rename = "type")]
    kind: String,
    public: String,
}

const SECRET_TYPE: &str = "civia-ed25519-secret";
const PUBLIC_TYPE: &str = "civia-ed25519-public";

fn hex32(s: &str) -> Result<[u8; 32], FormatError> {
    let v = hex::decode(s).map_err(|e| FormatError::BadKey(format!("not hex: {e}")))?;
    v.try_into()
        .map_err(|_| FormatError::BadKey("key must be 32 bytes".into()))
}

impl PublicKey {
    /// From the 64-character hex form used in root metadata.
    pub fn from_hex(s: &str) -> Result<Self, FormatError> {
        let b = hex32(s)?;
        VerifyingKey::from_bytes(&b)
            .map(PublicKey)
            .map_err(|e| FormatError::BadKey(format!("not an ed25519 point: {e}")))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0.as_bytes())
    }

    pub fn key_id(&self) -> KeyId {
        sha256_hex(self.0.as_bytes())
    }

    /// Strict ed25519 verification (rejects small-order keys and malleable signatures).
    pub fn verify(&self, msg: &[u8], sig_hex: &str) -> bool {
        let Ok(raw) = hex::decode(sig_hex) else {
            return false;
        };
        let Ok(bytes) = <[u8; 64]>::try_from(raw.as_slice()) else {
            return false;
        };
        let sig = ed25519_dalek::Signature::from_bytes(&bytes);
        self.0.verify_strict(msg, &sig).is_ok()
    }

    pub fn to_file(&self) -> String {
        // serializing two strings cannot fail
        serde_json::to_string_pretty(&PublicFile {
            kind: PUBLIC_TYPE.into(),
            public: self.to_hex(),
        })
        .unwrap_or_default()
            + "\n"
    }

    pub fn from_file(text: &str) -> Result<Self, FormatError> {
        let f: PublicFile = serde_json::from_str(text)
            .map_err(|e| FormatError::BadKey(format!("public key file: {e}")))?;
        if f.kind != PUBLIC_TYPE {
            return Err(FormatError::BadKey(format!(
                "public key file has type '{}', expected '{PUBLIC_TYPE}'",
                f.kind
            )));
        }
        Self::from_hex(&f.public)
    }
}

impl SecretKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, FormatError> {
        let mut seed = [0u8; 32];
        getrandom::getrandom(&mut seed)
            .map_err(|e| FormatError::BadKey(format!("no randomness: {e}")))?;
        Ok(SecretKey(SigningKey::from_bytes(&seed)))
    }

    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Hex signature of `msg`.
    pub fn sign(&self, msg: &[u8]) -> String {
        hex::encode(self.0.sign(msg).to_bytes())
    }

    pub fn to_file(&self) -> String {
        serde_json::to_string_pretty(&SecretFile {
            kind: SECRET_TYPE.into(),
            secret: hex::encode(self.0.to_bytes()),
        })
        .unwrap_or_default()
            + "\n"
    }

    pub fn from_file(text: &str) -> Result<Self, FormatError> {
        let f: SecretFile = serde_json::from_str(text)
            .map_err(|_| FormatError::BadKey("not a Civia secret key file".into()))?;
        if f.kind != SECRET_TYPE {
            return Err(FormatError::BadKey(format!(
                "secret key file has type '{}', expected '{SECRET_TYPE}'",
                f.kind
            )));
        }
        Ok(Self::from_seed(hex32(&f.secret)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_verify() {
        let k = SecretKey::generate().unwrap();
        let k2 = SecretKey::from_file(&k.to_file()).unwrap();
        assert_eq!(k.public(), k2.public());
        let p = PublicKey::from_file(&k.public().to_file()).unwrap();
        let sig = k.sign(b"hello");
        assert!(p.verify(b"hello", &sig));
        assert!(!p.verify(b"hellp", &sig));
        assert!(!p.verify(b"hello", "00"));
        assert_eq!(p.key_id().len(), 64);
    }
}
