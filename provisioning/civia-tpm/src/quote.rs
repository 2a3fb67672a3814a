//! Attestation quotes and their offline verification (no TPM needed to verify).

use p256::ecdsa::signature::Verifier;
use p256::ecdsa::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::policy::{marshal_selection, PcrValues};

const TPM_GENERATED_VALUE: u32 = 0xff54_4347;
const TPM_ST_ATTEST_QUOTE: u16 = 0x8018;

/// A TPM quote as handed to the integrator (JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quote {
    /// hex TPMS_ATTEST, the signed bytes.
    pub attest: String,
    pub signature_r: String,
    pub signature_s: String,
    /// hex SEC1 point of the attestation key that signed (informational: the verifier uses the
    /// key it recorded at provisioning, never this one).
    pub ak_public: String,
    /// hex nonce the caller asked for.
    pub nonce: String,
    /// PCR values read right after the quote (informational).
    pub pcrs: PcrValues,
}

/// Why a quote does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum QuoteError {
    #[error("malformed quote: {0}")]
    Malformed(String),
    #[error("not a TPM-generated quote structure")]
    NotAQuote,
    #[error("the quote's signature does not verify with the recorded attestation key")]
    BadSignature,
    #[error("the quote answers another nonce (replayed or not fresh)")]
    NonceMismatch,
    #[error("the quote covers PCR {quoted:?}, expected {expected:?}")]
    SelectionMismatch { quoted: Vec<u8>, expected: Vec<u8> },
    #[error("the quoted PCR values differ from the published ones: {0}")]
    PcrMismatch(String),
}

/// What a verified quote tells.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuoteInfo {
    pub pcrs: Vec<u8>,
    pub clock_ms: u64,
    pub reset_count: u32,
    pub restart_count: u32,
    pub firmware_version: u64,
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], QuoteError> {
        if self.0.len() < n {
            return Err(QuoteError::Malformed("truncated TPMS_ATTEST".into()));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u8(&mut self) -> Result<u8, QuoteError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, QuoteError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, QuoteError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, QuoteError> {
        Ok((u64::from(self.u32()?) << 32) | u64::from(self.u32()?))
    }
    fn tpm2b(&mut self) -> Result<&'a [u8], QuoteError> {
        let n = self.u16()?;
        self.take(usize::from(n))
    }
}

fn unhex(what: &str, s: &str) -> Result<Vec<u8>, QuoteError> {
    hex::decode(s.trim()).map_err(|e| QuoteError::Malformed(format!("{what}: {e}")))
}

/// Verifies `quote` offline: signed by `ak_public` (SEC1, as recorded at provisioning), over
/// `nonce`, and the quoted PCRs hold exactly `expected` (the values published with the image;
/// the quote must cover every PCR of `expected`, no more, no less).
pub fn verify_quote(
    quote: &Quote,
    ak_public: &[u8],
    nonce: &[u8],
    expected: &PcrValues,
) -> Result<QuoteInfo, QuoteError> {
    let attest = unhex("attest", &quote.attest)?;
    let key = VerifyingKey::from_sec1_bytes(ak_public)
        .map_err(|e| QuoteError::Malformed(format!("attestation key: {e}")))?;
    let mut rs = [0u8; 64];
    for (i, part) in [&quote.signature_r, &quote.signature_s]
        .into_iter()
        .enumerate()
    {
        let v = unhex("signature", part)?;
        if v.len() > 32 {
            return Err(QuoteError::Malformed(
                "signature component over 32 bytes".into(),
            ));
        }
        rs[i * 32 + 32 - v.len()..(i + 1) * 32].copy_from_slice(&v);
    }
    let sig = Signature::from_slice(&rs).map_err(|_| QuoteError::BadSignature)?;
    key.verify(&attest, &sig)
        .map_err(|_| QuoteError::BadSignature)?;

    let mut r = Reader(&attest);
    if r.u32()? != TPM_GENERATED_VALUE || r.u16()? != TPM_ST_ATTEST_QUOTE {
        return Err(QuoteError::NotAQuote);
    }
    let _signer = r.tpm2b()?;
    let extra = r.tpm2b()?;
    if extra != nonce {
        return Err(QuoteError::NonceMismatch);
    }
    let clock_ms = r.u64()?;
    let reset_count = r.u32()?;
    let restart_count = r.u32()?;
    let _safe = r.u8()?;
    let firmware_version = r.u64()?;
    // TPMS_QUOTE_INFO: TPML_PCR_SELECTION then TPM2B_DIGEST.
    let count = r.u32()?;
    let mut quoted = Vec::new();
    let mut selection = count.to_be_bytes().to_vec();
    for _ in 0..count {
        let alg = r.u16()?;
        let size = r.u8()?;
        let bitmap = r.take(usize::from(size))?;
        selection.extend_from_slice(&alg.to_be_bytes());
        selection.push(size);
        selection.extend_from_slice(bitmap);
        for (byte, bits) in bitmap.iter().enumerate() {
            for bit in 0..8u8 {
                if bits & (1 << bit) != 0 {
                    quoted.push(byte as u8 * 8 + bit);
                }
            }
        }
    }
    let pcr_digest = r.tpm2b()?;
    let want = expected.indices();
    if selection != marshal_selection(&want) {
        return Err(QuoteError::SelectionMismatch {
            quoted,
            expected: want,
        });
    }
    if pcr_digest != expected.digest() {
        // Name the PCRs whose informational values differ, when the quote carries them.
        let differ = expected.changed_from(&quote.pcrs);
        let what = if differ.is_empty() {
            "digest mismatch".to_string()
        } else {
            format!("PCR {differ:?}")
        };
        return Err(QuoteError::PcrMismatch(what));
    }
    Ok(QuoteInfo {
        pcrs: want,
        clock_ms,
        reset_count,
        restart_count,
        firmware_version,
    })
}

/// hex SHA-256 of an attestation key's SEC1 bytes, for display.
pub fn ak_fingerprint(ak_public: &[u8]) -> String {
    hex::encode(Sha256::digest(ak_public))
}
