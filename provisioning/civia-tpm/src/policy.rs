//! PCR sets and policy digests, computed in software (TPM 2.0 Part 3, PolicyPCR and
//! PolicyAuthorize), and signed PCR policies in systemd-measure's JSON format.
//!
//! Only the SHA-256 PCR bank is used.

use std::collections::BTreeMap;

use base64::Engine;
use rsa::pkcs1::EncodeRsaPublicKey;
use rsa::pkcs1v15::{Signature as RsaSig, SigningKey, VerifyingKey};
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use rsa::traits::PublicKeyParts;
use rsa::{RsaPrivateKey, RsaPublicKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{format, Result, TpmError};

/// TPM_ALG_SHA256.
pub(crate) const ALG_SHA256: u16 = 0x000B;
const CC_POLICY_PCR: u32 = 0x0000_017F;
const CC_POLICY_AUTHORIZE: u32 = 0x0000_016A;
/// Highest PCR index on a PC client TPM.
pub const MAX_PCR: u8 = 23;

/// Values of a set of SHA-256 PCRs, by index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PcrValues(#[serde(with = "hex_map")] pub BTreeMap<u8, [u8; 32]>);

impl PcrValues {
    pub fn indices(&self) -> Vec<u8> {
        self.0.keys().copied().collect()
    }

    /// SHA-256 over the concatenated values in ascending PCR order (the `pcrDigest` of
    /// PolicyPCR and of a quote).
    pub fn digest(&self) -> [u8; 32] {
        let mut h = Sha256::new();
        for v in self.0.values() {
            h.update(v);
        }
        h.finalize().into()
    }

    /// Indices whose value differs from `other` (or is missing there).
    pub fn changed_from(&self, other: &PcrValues) -> Vec<u8> {
        self.0
            .iter()
            .filter(|(i, v)| other.0.get(i) != Some(v))
            .map(|(i, _)| *i)
            .collect()
    }
}

/// Checks a PCR index list: non-empty, each ≤ 23, no duplicates. Returns it sorted.
pub fn check_pcrs(pcrs: &[u8]) -> Result<Vec<u8>> {
    let mut v = pcrs.to_vec();
    v.sort_unstable();
    v.dedup();
    if v.len() != pcrs.len() {
        return Err(format("PCR list", "duplicate PCR index"));
    }
    if let Some(bad) = v.iter().find(|p| **p > MAX_PCR) {
        return Err(format(
            "PCR list",
            format!("PCR {bad} out of range 0-{MAX_PCR}"),
        ));
    }
    Ok(v)
}

/// Parses "7+11", "7,11" or "7 11".
pub fn parse_pcr_list(s: &str) -> Result<Vec<u8>> {
    let v = s
        .split(|c: char| c == '+' || c == ',' || c.is_whitespace())
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.parse::<u8>()
                .map_err(|e| format("PCR list", format!("{p:?}: {e}")))
        })
        .collect::<Result<Vec<u8>>>()?;
    check_pcrs(&v)
}

/// Marshalled TPML_PCR_SELECTION with one SHA-256 selection of `pcrs`.
pub(crate) fn marshal_selection(pcrs: &[u8]) -> Vec<u8> {
    let mut bitmap = [0u8; 3];
    for p in pcrs {
        bitmap[usize::from(p / 8)] |= 1 << (p % 8);
    }
    let mut out = Vec::with_capacity(10);
    out.extend_from_slice(&1u32.to_be_bytes());
    out.extend_from_slice(&ALG_SHA256.to_be_bytes());
    out.push(3);
    out.extend_from_slice(&bitmap);
    out
}

/// policyDigest after TPM2_PolicyPCR(values) starting from `previous`.
pub fn policy_pcr(previous: &[u8; 32], values: &PcrValues) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(previous);
    h.update(CC_POLICY_PCR.to_be_bytes());
    h.update(marshal_selection(&values.indices()));
    h.update(values.digest());
    h.finalize().into()
}

/// policyDigest after TPM2_PolicyAuthorize(keyName, policyRef = empty).
pub fn policy_authorize(key_name: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(CC_POLICY_AUTHORIZE.to_be_bytes());
    h.update(key_name);
    let first: [u8; 32] = h.finalize().into();
    // PolicyUpdate's second hash over policyRef (empty).
    Sha256::digest(first).into()
}

/// The integrator's PCR-policy signing key (RSA, as systemd-measure and systemd-cryptenroll
/// 252 require), by its public half.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyAuthority {
    key: RsaPublicKey,
}

impl PolicyAuthority {
    pub fn from_pem(pem: &str) -> Result<Self> {
        let key = RsaPublicKey::from_public_key_pem(pem)
            .map_err(|e| TpmError::Key(format!("policy public key: {e}")))?;
        Ok(Self { key })
    }

    pub fn to_pem(&self) -> Result<String> {
        self.key
            .to_public_key_pem(rsa::pkcs8::LineEnding::LF)
            .map_err(|e| TpmError::Key(e.to_string()))
    }

    /// SHA-256 of the SubjectPublicKeyInfo DER: systemd's `pkfp`.
    /// The key's fingerprint as systemd writes it in signed policy files (`pkfp`): SHA-256
    /// of the PKCS#1 DER encoding of the public key (OpenSSL's `i2d_PublicKey`), not of the
    /// SubjectPublicKeyInfo.
    pub fn fingerprint(&self) -> Result<[u8; 32]> {
        let der = self
            .key
            .to_pkcs1_der()
            .map_err(|e| TpmError::Key(e.to_string()))?;
        Ok(Sha256::digest(der.as_bytes()).into())
    }

    pub(crate) fn modulus(&self) -> Vec<u8> {
        self.key.n().to_bytes_be()
    }

    pub(crate) fn exponent(&self) -> Result<u32> {
        let e = self.key.e().to_bytes_be();
        if e.len() > 4 {
            return Err(TpmError::Key("RSA exponent larger than 32 bits".into()));
        }
        Ok(e.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)))
    }

    pub(crate) fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// Checks a policy signature in software (the TPM checks it again at unseal).
    pub fn verify(&self, policy_digest: &[u8; 32], sig: &[u8]) -> bool {
        let Ok(sig) = RsaSig::try_from(sig) else {
            return false;
        };
        VerifyingKey::<Sha256>::new(self.key.clone())
            .verify(policy_digest, &sig)
            .is_ok()
    }
}

/// One signed policy: "these values of these PCRs are approved" (systemd-measure's entry).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPolicyEntry {
    pub pcrs: Vec<u8>,
    /// hex SHA-256 of the signing key's SubjectPublicKeyInfo.
    pub pkfp: String,
    /// hex policy digest: PolicyPCR over the approved values, from a zero digest.
    pub pol: String,
    /// base64 RSASSA-PKCS1-v1_5 SHA-256 signature over `pol`.
    pub sig: String,
}

/// A set of signed PCR policies, in the JSON format systemd-measure writes
/// (`{"sha256": [entry, ...]}`), so one signature file serves both systemd-cryptsetup and civia.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedPolicies {
    #[serde(default)]
    pub sha256: Vec<SignedPolicyEntry>,
}

impl SignedPolicies {
    pub fn from_json(s: &str) -> Result<Self> {
        serde_json::from_str(s).map_err(|e| format("signed PCR policy file", e))
    }

    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| format("signed PCR policy file", e))
    }

    /// Signs "PCRs hold `values`" with the integrator's private key (PKCS#8 PEM) and adds it.
    /// This is what the image build does for each boot phase of a new image.
    pub fn sign(&mut self, private_key_pem: &str, values: &PcrValues) -> Result<()> {
        let key = RsaPrivateKey::from_pkcs8_pem(private_key_pem)
            .map_err(|e| TpmError::Key(format!("policy private key: {e}")))?;
        let authority = PolicyAuthority {
            key: key.to_public_key(),
        };
        let pol = policy_pcr(&[0u8; 32], values);
        let sig = SigningKey::<Sha256>::new(key).sign(&pol).to_vec();
        self.sha256.push(SignedPolicyEntry {
            pcrs: values.indices(),
            pkfp: hex::encode(authority.fingerprint()?),
            pol: hex::encode(pol),
            sig: base64::engine::general_purpose::STANDARD.encode(sig),
        });
        Ok(())
    }

    /// The signature approving `values` by `authority`, if any.
    pub(crate) fn find(
        &self,
        authority: &PolicyAuthority,
        values: &PcrValues,
    ) -> Result<Option<(Vec<u8>, [u8; 32])>> {
        let fp = hex::encode(authority.fingerprint()?);
        let pol = policy_pcr(&[0u8; 32], values);
        let pol_hex = hex::encode(pol);
        for e in &self.sha256 {
            if e.pkfp.eq_ignore_ascii_case(&fp)
                && e.pol.eq_ignore_ascii_case(&pol_hex)
                && e.pcrs == values.indices()
            {
                let sig = base64::engine::general_purpose::STANDARD
                    .decode(e.sig.as_bytes())
                    .map_err(|err| format("signed PCR policy signature", err))?;
                return Ok(Some((sig, pol)));
            }
        }
        Ok(None)
    }
}

mod hex_map {
    use std::collections::BTreeMap;

    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &BTreeMap<u8, [u8; 32]>, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(m.iter().map(|(k, v)| (k.to_string(), hex::encode(v))))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u8, [u8; 32]>, D::Error> {
        let raw = BTreeMap::<String, String>::deserialize(d)?;
        raw.into_iter()
            .map(|(k, v)| {
                let k: u8 = k.parse().map_err(D::Error::custom)?;
                let bytes = hex::decode(&v).map_err(D::Error::custom)?;
                let arr: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| D::Error::custom(format!("PCR {k}: not 32 bytes")))?;
                Ok((k, arr))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// systemd-measure (and so the `.pcrsig` of every UKI) names the signing key by the
    /// SHA-256 of its PKCS#1 DER encoding (`i2d_PublicKey`); a signature file it wrote must be
    /// found by that fingerprint, or nothing sealed under the signed policy ever unseals on
    /// the box.
    #[test]
    fn fingerprint_is_systemds() {
        let dir = std::env::temp_dir().join(format!("civia-fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("k.pem");
        let pubkey = dir.join("k.pub.pem");
        let ok = |c: &mut std::process::Command| {
            let out = c.output().unwrap();
            assert!(out.status.success(), "{out:?}");
            out.stdout
        };
        ok(std::process::Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&key));
        ok(std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&pubkey));
        let pkcs1 = ok(std::process::Command::new("openssl")
            .args([
                "rsa",
                "-pubin",
                "-RSAPublicKey_out",
                "-outform",
                "DER",
                "-in",
            ])
            .arg(&pubkey));
        let a = PolicyAuthority::from_pem(&std::fs::read_to_string(&pubkey).unwrap()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(
            hex::encode(a.fingerprint().unwrap()),
            hex::encode(Sha256::digest(&pkcs1))
        );
    }

    #[test]
    fn selection_bitmap() {
        assert_eq!(
            marshal_selection(&[7, 11]),
            vec![0, 0, 0, 1, 0, 0x0b, 3, 0x80, 0x08, 0]
        );
        assert_eq!(
            marshal_selection(&[0, 23]),
            vec![0, 0, 0, 1, 0, 0x0b, 3, 1, 0, 0x80]
        );
    }

    #[test]
    fn pcr_lists() {
        assert_eq!(parse_pcr_list("11+7").unwrap(), vec![7, 11]);
        assert_eq!(parse_pcr_list("7,11").unwrap(), vec![7, 11]);
        assert!(parse_pcr_list("7+7").is_err());
        assert!(parse_pcr_list("24").is_err());
    }

    #[test]
    fn values_json_roundtrip() {
        let mut v = PcrValues::default();
        v.0.insert(11, [0xab; 32]);
        let j = serde_json::to_string(&v).unwrap();
        assert!(j.contains("\"11\":\"abab"));
        assert_eq!(serde_json::from_str::<PcrValues>(&j).unwrap(), v);
    }
}
