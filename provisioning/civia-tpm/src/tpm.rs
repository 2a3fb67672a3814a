//! The TPM connection: random bytes, PCRs, sealing and unsealing, quotes.
//!
//! Every transient object and session created here is flushed before the call returns, on
//! success and on error: swtpm (and a TPM reached without a resource manager) holds only a
//! few of them.

use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tss_esapi::attributes::{ObjectAttributesBuilder, SessionAttributesBuilder};
use tss_esapi::constants::{CapabilityType, SessionType};
use tss_esapi::handles::{AuthHandle, KeyHandle, ObjectHandle, PcrHandle, SessionHandle};
use tss_esapi::interface_types::algorithm::{HashingAlgorithm, PublicAlgorithm};
use tss_esapi::interface_types::ecc::EccCurve;
use tss_esapi::interface_types::key_bits::RsaKeyBits;
use tss_esapi::interface_types::resource_handles::Hierarchy;
use tss_esapi::interface_types::session_handles::{AuthSession, PolicySession};
use tss_esapi::structures::{
    CapabilityData, Data, Digest, DigestValues, EccPoint, EccScheme, HashScheme,
    KeyDerivationFunctionScheme, KeyedHashScheme, Nonce, PcrSelectionList, PcrSelectionListBuilder,
    PcrSlot, Private, Public, PublicBuilder, PublicEccParametersBuilder, PublicKeyRsa,
    PublicKeyedHashParameters, PublicRsaParametersBuilder, RsaExponent, RsaScheme, RsaSignature,
    SensitiveData, Signature, SignatureScheme, SymmetricDefinition, SymmetricDefinitionObject,
};
use tss_esapi::tcti_ldr::TctiNameConf;
use tss_esapi::traits::{Marshall, UnMarshall};
use tss_esapi::Context;
use zeroize::Zeroizing;

use crate::error::{cmd, format, Result, TpmError};
use crate::policy::{self, PcrValues, PolicyAuthority, SignedPolicies};
use crate::quote::Quote;

/// Largest secret a sealed data object holds (MAX_SYM_DATA).
pub const MAX_SEALED_LEN: usize = 128;

/// What a sealed secret is bound to.
#[derive(Clone, Debug, Default)]
pub struct SealPolicy {
    /// PCRs bound to their values at sealing time (e.g. 7, Secure Boot state).
    pub literal_pcrs: Vec<u8>,
    /// A signing key and the PCRs it signs policies for (e.g. 11, the UKI): any values the key
    /// signs are accepted, so an update ships a new signature instead of re-sealing.
    pub authority: Option<(PolicyAuthority, Vec<u8>)>,
}

/// A sealed secret as stored on disk: useless without the TPM that sealed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedBlob {
    pub format: u32,
    /// hex name of the storage root key the object was created under.
    pub srk_name: String,
    /// hex marshalled TPMT_PUBLIC of the sealed object.
    pub public: String,
    /// hex TPM2B_PRIVATE buffer contents (encrypted by the TPM).
    pub private: String,
    /// Literal PCR values bound at sealing time.
    pub literal_pcrs: PcrValues,
    /// PEM public key of the policy authority, if any.
    pub authority_pem: Option<String>,
    /// PCRs the authority signs policies for.
    pub signed_pcrs: Vec<u8>,
    /// hex policy digest the object requires.
    pub policy_digest: String,
}

impl SealedBlob {
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(self).map_err(|e| format("sealed blob", e))
    }

    pub fn from_json(s: &str) -> Result<Self> {
        let b: Self = serde_json::from_str(s).map_err(|e| format("sealed blob", e))?;
        if b.format != 1 {
            return Err(format(
                "sealed blob",
                format!("unknown format {}", b.format),
            ));
        }
        Ok(b)
    }

    /// Attributes of the sealed object as the TPM will enforce them.
    pub fn user_with_auth(&self) -> Result<bool> {
        let public = Public::unmarshall(&hex_decode("sealed public", &self.public)?)
            .map_err(cmd("unmarshal public"))?;
        Ok(public.object_attributes().user_with_auth())
    }
}

/// A TPM self-test and resource report.
#[derive(Clone, Debug, Serialize)]
pub struct Health {
    pub self_test_ok: bool,
    pub manufacturer: String,
    pub transient_objects_loaded: usize,
    pub sessions_loaded: usize,
}

/// An open TPM.
pub struct Tpm {
    ctx: Context,
    tcti: String,
}

impl std::fmt::Debug for Tpm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tpm").field("tcti", &self.tcti).finish()
    }
}

impl Tpm {
    /// Opens the TPM named by a TCTI string: `device:/dev/tpmrm0` on the box,
    /// `swtpm:host=127.0.0.1,port=2321` in tests.
    pub fn open(tcti: &str) -> Result<Self> {
        let conf = TctiNameConf::from_str(tcti).map_err(|source| TpmError::Tcti {
            tcti: tcti.to_string(),
            source,
        })?;
        let ctx = Context::new(conf).map_err(|source| TpmError::Open {
            tcti: tcti.to_string(),
            source,
        })?;
        Ok(Self {
            ctx,
            tcti: tcti.to_string(),
        })
    }

    pub fn tcti(&self) -> &str {
        &self.tcti
    }

    /// `n` random bytes from the TPM's generator.
    pub fn random(&mut self, n: usize) -> Result<Zeroizing<Vec<u8>>> {
        let mut out = Zeroizing::new(Vec::with_capacity(n));
        while out.len() < n {
            let want = (n - out.len()).min(32);
            let chunk = self.ctx.get_random(want).map_err(cmd("GetRandom"))?;
            out.extend_from_slice(chunk.value());
        }
        Ok(out)
    }

    /// Current SHA-256 values of `pcrs`.
    pub fn read_pcrs(&mut self, pcrs: &[u8]) -> Result<PcrValues> {
        let pcrs = policy::check_pcrs(pcrs)?;
        let mut out = PcrValues::default();
        // PCR_Read returns at most 8 digests per call.
        for chunk in pcrs.chunks(8) {
            let sel = selection(chunk)?;
            let (_, got_sel, digests) = self
                .ctx
                .execute_without_session(|c| c.pcr_read(sel))
                .map_err(cmd("PCR_Read"))?;
            let got: Vec<u8> = got_sel
                .get_selections()
                .iter()
                .flat_map(|s| s.selected())
                .map(slot_index)
                .collect();
            if got != chunk || digests.value().len() != chunk.len() {
                return Err(format(
                    "PCR read",
                    format!("asked for PCR {chunk:?} in the SHA-256 bank, the TPM returned {got:?} (bank not active?)"),
                ));
            }
            for (i, d) in chunk.iter().zip(digests.value()) {
                let v: [u8; 32] = d
                    .value()
                    .try_into()
                    .map_err(|_| format("PCR value", "not 32 bytes"))?;
                out.0.insert(*i, v);
            }
        }
        Ok(out)
    }

    /// Extends the SHA-256 bank of `pcr` with SHA-256(`data`) (measurement; tests).
    pub fn extend_pcr(&mut self, pcr: u8, data: &[u8]) -> Result<()> {
        policy::check_pcrs(&[pcr])?;
        let handle = PcrHandle::try_from(u32::from(pcr)).map_err(cmd("PCR handle"))?;
        let mut vals = DigestValues::new();
        let d = Digest::try_from(Sha256::digest(data).to_vec()).map_err(cmd("digest"))?;
        vals.set(HashingAlgorithm::Sha256, d);
        self.ctx
            .execute_with_nullauth_session(|c| c.pcr_extend(handle, vals))
            .map_err(cmd("PCR_Extend"))
    }

    /// Name of the storage root key: derived from the owner seed, so it changes when the TPM
    /// is replaced or cleared.
    pub fn srk_name(&mut self) -> Result<Vec<u8>> {
        let (srk, name) = self.create_srk()?;
        self.flush(srk.into());
        Ok(name)
    }

    /// Seals `secret` under `policy`. The object has no usable password (`user_with_auth`
    /// off): only the policy opens it.
    pub fn seal(&mut self, secret: &[u8], policy: &SealPolicy) -> Result<SealedBlob> {
        if secret.len() > MAX_SEALED_LEN {
            return Err(TpmError::SecretTooLarge {
                len: secret.len(),
                max: MAX_SEALED_LEN,
            });
        }
        let (literal_values, authority_pem, signed_pcrs, digest) = self.resolve_policy(policy)?;
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_user_with_auth(false)
            .with_admin_with_policy(true)
            .with_no_da(true)
            .build()
            .map_err(cmd("object attributes"))?;
        let public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::KeyedHash)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_auth_policy(Digest::try_from(digest.to_vec()).map_err(cmd("digest"))?)
            .with_keyed_hash_parameters(PublicKeyedHashParameters::new(KeyedHashScheme::Null))
            .with_keyed_hash_unique_identifier(Digest::default())
            .build()
            .map_err(cmd("sealed object template"))?;
        let data = SensitiveData::try_from(secret.to_vec()).map_err(cmd("sensitive data"))?;

        let (srk, srk_name) = self.create_srk()?;
        let created = self.with_session(srk, SessionType::Hmac, true, |ctx, session| {
            ctx.execute_with_session(Some(session), |c| {
                c.create(srk, public, None, Some(data), None, None)
            })
            .map_err(cmd("Create (seal)"))
        });
        self.flush(srk.into());
        let created = created?;
        Ok(SealedBlob {
            format: 1,
            srk_name: hex::encode(srk_name),
            public: hex::encode(
                created
                    .out_public
                    .marshall()
                    .map_err(cmd("marshal public"))?,
            ),
            private: hex::encode(created.out_private.value()),
            literal_pcrs: literal_values,
            authority_pem,
            signed_pcrs,
            policy_digest: hex::encode(digest),
        })
    }

    /// The policy digest an object sealed now under `policy` requires (literal PCRs at their
    /// current values). Compared with what systemd-cryptenroll enrolled, it proves the token
    /// is bound to what the box's configuration says.
    pub fn policy_digest(&mut self, policy: &SealPolicy) -> Result<[u8; 32]> {
        Ok(self.resolve_policy(policy)?.3)
    }

    #[allow(clippy::type_complexity)]
    fn resolve_policy(
        &mut self,
        policy: &SealPolicy,
    ) -> Result<(PcrValues, Option<String>, Vec<u8>, [u8; 32])> {
        let literal = if policy.literal_pcrs.is_empty() {
            Vec::new()
        } else {
            policy::check_pcrs(&policy.literal_pcrs)?
        };
        if literal.is_empty() && policy.authority.is_none() {
            return Err(format(
                "seal policy",
                "no PCR and no policy authority: nothing would bind the secret",
            ));
        }
        let literal_values = if literal.is_empty() {
            PcrValues::default()
        } else {
            self.read_pcrs(&literal)?
        };
        let (authority_pem, signed_pcrs, mut digest) = match &policy.authority {
            Some((authority, pcrs)) => {
                let pcrs = policy::check_pcrs(pcrs)?;
                let name = self.authority_name(authority)?;
                (
                    Some(authority.to_pem()?),
                    pcrs,
                    policy::policy_authorize(&name),
                )
            }
            None => (None, Vec::new(), [0u8; 32]),
        };
        if !literal.is_empty() {
            digest = policy::policy_pcr(&digest, &literal_values);
        }
        Ok((literal_values, authority_pem, signed_pcrs, digest))
    }

    /// Unseals a blob made by [`Tpm::seal`]. `signed` holds the signed policies for the
    /// authority's PCRs (required when the blob has an authority).
    pub fn unseal(
        &mut self,
        blob: &SealedBlob,
        signed: Option<&SignedPolicies>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let public = Public::unmarshall(&hex_decode("sealed public", &blob.public)?)
            .map_err(cmd("unmarshal public"))?;
        let private = Private::try_from(hex_decode("sealed private", &blob.private)?)
            .map_err(cmd("private"))?;
        let authority = blob
            .authority_pem
            .as_deref()
            .map(PolicyAuthority::from_pem)
            .transpose()?;
        // Clear errors before asking the TPM: which literal PCR changed, which signature is missing.
        if !blob.literal_pcrs.0.is_empty() {
            let now = self.read_pcrs(&blob.literal_pcrs.indices())?;
            let changed = blob.literal_pcrs.changed_from(&now);
            if !changed.is_empty() {
                return Err(TpmError::PcrMismatch { changed });
            }
        }
        let signed_step = match &authority {
            Some(a) => {
                let now = self.read_pcrs(&blob.signed_pcrs)?;
                let found = signed.map(|s| s.find(a, &now)).transpose()?.flatten();
                match found {
                    Some((sig, pol)) => Some((a.clone(), now, sig, pol)),
                    None => {
                        return Err(TpmError::NoSignedPolicy {
                            fingerprint: hex::encode(a.fingerprint()?),
                            pcrs: blob.signed_pcrs.clone(),
                        })
                    }
                }
            }
            None => None,
        };
        self.unseal_object(
            &blob.srk_name,
            public,
            private,
            signed_step,
            &blob.literal_pcrs,
        )
    }

    /// Unseals a TPM2 token enrolled by systemd-cryptenroll (252): `blob` is the token's
    /// `tpm2-blob` (TPM2B_PRIVATE then TPM2B_PUBLIC), sealed under the same storage root key
    /// template as ours. Used to prove an enrolment works without device-mapper.
    pub fn unseal_systemd_token(
        &mut self,
        blob: &[u8],
        literal_pcrs: &[u8],
        authority: Option<(&PolicyAuthority, &[u8], &SignedPolicies)>,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (private, rest) =
            split_tpm2b(blob).ok_or_else(|| format("tpm2-blob", "truncated private"))?;
        let (public, _) =
            split_tpm2b(rest).ok_or_else(|| format("tpm2-blob", "truncated public"))?;
        let private = Private::try_from(private.to_vec()).map_err(cmd("private"))?;
        let public = Public::unmarshall(public).map_err(cmd("unmarshal public"))?;
        let literal = if literal_pcrs.is_empty() {
            PcrValues::default()
        } else {
            self.read_pcrs(literal_pcrs)?
        };
        let signed_step = match authority {
            Some((a, pcrs, signed)) => {
                let now = self.read_pcrs(pcrs)?;
                match signed.find(a, &now)? {
                    Some((sig, pol)) => Some((a.clone(), now, sig, pol)),
                    None => {
                        return Err(TpmError::NoSignedPolicy {
                            fingerprint: hex::encode(a.fingerprint()?),
                            pcrs: pcrs.to_vec(),
                        })
                    }
                }
            }
            None => None,
        };
        let srk_name = hex::encode(self.srk_name()?);
        self.unseal_object(&srk_name, public, private, signed_step, &literal)
    }

    fn unseal_object(
        &mut self,
        expected_srk: &str,
        public: Public,
        private: Private,
        signed_step: Option<(PolicyAuthority, PcrValues, Vec<u8>, [u8; 32])>,
        literal: &PcrValues,
    ) -> Result<Zeroizing<Vec<u8>>> {
        let (srk, srk_name) = self.create_srk()?;
        let found = hex::encode(&srk_name);
        if !found.eq_ignore_ascii_case(expected_srk) {
            self.flush(srk.into());
            return Err(TpmError::TpmChanged {
                expected: expected_srk.to_string(),
                found,
            });
        }
        let loaded = self.with_session(srk, SessionType::Hmac, true, |ctx, session| {
            ctx.execute_with_session(Some(session), |c| c.load(srk, private, public))
                .map_err(cmd("Load (sealed object)"))
        });
        let object = match loaded {
            Ok(o) => o,
            Err(e) => {
                self.flush(srk.into());
                return Err(e);
            }
        };
        // The policy session is salted with the SRK and encrypts the unsealed data on the wire.
        let result = self.with_session(srk, SessionType::Policy, false, |ctx, session| {
            let policy_session = PolicySession::try_from(session).map_err(cmd("policy session"))?;
            if let Some((authority, values, sig, pol)) = signed_step {
                let pcr_digest =
                    Digest::try_from(values.digest().to_vec()).map_err(cmd("digest"))?;
                let sel = selection(&values.indices())?;
                ctx.execute_without_session(|c| c.policy_pcr(policy_session, pcr_digest, sel))
                    .map_err(|source| TpmError::PolicyRefused {
                        step: "PolicyPCR (signed PCRs changed while unsealing)",
                        source,
                    })?;
                let key = ctx
                    .execute_without_session(|c| {
                        c.load_external_public(authority_public(&authority)?, Hierarchy::Owner)
                    })
                    .map_err(cmd("LoadExternal (policy key)"))?;
                let ticket = (|| {
                    let name = ctx.tr_get_name(key.into())?;
                    let a_hash = Digest::try_from(Sha256::digest(pol).to_vec())?;
                    let signature = Signature::RsaSsa(RsaSignature::create(
                        HashingAlgorithm::Sha256,
                        PublicKeyRsa::try_from(sig)?,
                    )?);
                    let ticket = ctx
                        .execute_without_session(|c| c.verify_signature(key, a_hash, signature))?;
                    Ok::<_, tss_esapi::Error>((name, ticket))
                })();
                let _ = ctx.flush_context(key.into());
                let (name, ticket) = ticket.map_err(|source| TpmError::PolicyRefused {
                    step: "VerifySignature (policy signature)",
                    source,
                })?;
                let approved = Digest::try_from(pol.to_vec()).map_err(cmd("digest"))?;
                ctx.execute_without_session(|c| {
                    c.policy_authorize(policy_session, approved, Nonce::default(), &name, ticket)
                })
                .map_err(|source| TpmError::PolicyRefused {
                    step: "PolicyAuthorize",
                    source,
                })?;
            }
            if !literal.0.is_empty() {
                let pcr_digest =
                    Digest::try_from(literal.digest().to_vec()).map_err(cmd("digest"))?;
                let sel = selection(&literal.indices())?;
                ctx.execute_without_session(|c| c.policy_pcr(policy_session, pcr_digest, sel))
                    .map_err(|source| TpmError::PolicyRefused {
                        step: "PolicyPCR (literal PCRs)",
                        source,
                    })?;
            }
            ctx.execute_with_session(Some(session), |c| c.unseal(object.into()))
                .map(|d| Zeroizing::new(d.value().to_vec()))
                .map_err(|source| TpmError::PolicyRefused {
                    step: "Unseal",
                    source,
                })
        });
        self.flush(object.into());
        self.flush(srk.into());
        result
    }

    /// Public key (SEC1 uncompressed point) of the attestation key: a restricted ECDSA P-256
    /// signing key derived from the endorsement seed, so it is the same at every call.
    pub fn attestation_key(&mut self) -> Result<Vec<u8>> {
        let (ak, point) = self.create_ak()?;
        self.flush(ak.into());
        Ok(point)
    }

    /// A quote over `pcrs` (SHA-256 bank) with the caller's nonce (at most 64 bytes).
    pub fn quote(&mut self, pcrs: &[u8], nonce: &[u8]) -> Result<Quote> {
        let pcrs = policy::check_pcrs(pcrs)?;
        let data = Data::try_from(nonce.to_vec()).map_err(cmd("nonce (at most 64 bytes)"))?;
        let sel = selection(&pcrs)?;
        let (ak, point) = self.create_ak()?;
        let quoted = self
            .ctx
            .execute_with_nullauth_session(|c| c.quote(ak, data, SignatureScheme::Null, sel))
            .map_err(cmd("Quote"));
        self.flush(ak.into());
        let (attest, signature) = quoted?;
        let (r, s) = match signature {
            Signature::EcDsa(sig) => (
                sig.signature_r().value().to_vec(),
                sig.signature_s().value().to_vec(),
            ),
            other => {
                return Err(format(
                    "quote signature",
                    format!("unexpected {:?}", other.algorithm()),
                ))
            }
        };
        let values = self.read_pcrs(&pcrs)?;
        Ok(Quote {
            attest: hex::encode(attest.marshall().map_err(cmd("marshal attest"))?),
            signature_r: hex::encode(r),
            signature_s: hex::encode(s),
            ak_public: hex::encode(point),
            nonce: hex::encode(nonce),
            pcrs: values,
        })
    }

    /// Self-test result, manufacturer and how many transient objects and sessions are loaded.
    pub fn health(&mut self) -> Result<Health> {
        let (_, test) = self.ctx.get_test_result().map_err(cmd("GetTestResult"))?;
        let manufacturer = tss_esapi::utils::get_tpm_vendor(&mut self.ctx).unwrap_or_default();
        let transient_objects_loaded = self.count_handles(0x8000_0000)?;
        let sessions_loaded = self.count_handles(0x0200_0000)? + self.count_handles(0x0300_0000)?;
        Ok(Health {
            self_test_ok: test.is_ok(),
            manufacturer,
            transient_objects_loaded,
            sessions_loaded,
        })
    }

    /// TPM2_Clear through the lockout hierarchy (empty lockout auth): a new owner seed, so
    /// every object sealed before is gone for good. Factory reset.
    pub fn clear_owner(&mut self) -> Result<()> {
        self.ctx
            .execute_with_nullauth_session(|c| c.clear(AuthHandle::Lockout))
            .map_err(cmd("Clear"))
    }

    fn count_handles(&mut self, first: u32) -> Result<usize> {
        let (data, _) = self
            .ctx
            .get_capability(CapabilityType::Handles, first, 64)
            .map_err(cmd("GetCapability"))?;
        Ok(match data {
            CapabilityData::Handles(list) => list
                .iter()
                .filter(|h| u32::from(**h) & 0xff00_0000 == first & 0xff00_0000)
                .count(),
            _ => 0,
        })
    }

    /// Storage root key: the ECC P-256 template systemd 252 uses, so both share it.
    fn create_srk(&mut self) -> Result<(KeyHandle, Vec<u8>)> {
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_restricted(true)
            .with_decrypt(true)
            .build()
            .map_err(cmd("SRK attributes"))?;
        let public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_ecc_parameters(
                PublicEccParametersBuilder::new_restricted_decryption_key(
                    SymmetricDefinitionObject::AES_128_CFB,
                    EccCurve::NistP256,
                )
                .build()
                .map_err(cmd("SRK parameters"))?,
            )
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
            .map_err(cmd("SRK template"))?;
        let created = self
            .ctx
            .execute_with_nullauth_session(|c| {
                c.create_primary(Hierarchy::Owner, public, None, None, None, None)
            })
            .map_err(cmd("CreatePrimary (SRK)"))?;
        let name = match self.ctx.tr_get_name(created.key_handle.into()) {
            Ok(n) => n.value().to_vec(),
            Err(e) => {
                self.flush(created.key_handle.into());
                return Err(TpmError::Command {
                    op: "SRK name",
                    source: e,
                });
            }
        };
        Ok((created.key_handle, name))
    }

    fn create_ak(&mut self) -> Result<(KeyHandle, Vec<u8>)> {
        let attributes = ObjectAttributesBuilder::new()
            .with_fixed_tpm(true)
            .with_fixed_parent(true)
            .with_sensitive_data_origin(true)
            .with_user_with_auth(true)
            .with_restricted(true)
            .with_sign_encrypt(true)
            .with_no_da(true)
            .build()
            .map_err(cmd("AK attributes"))?;
        let params = PublicEccParametersBuilder::new()
            .with_ecc_scheme(EccScheme::EcDsa(HashScheme::new(HashingAlgorithm::Sha256)))
            .with_curve(EccCurve::NistP256)
            .with_is_signing_key(true)
            .with_is_decryption_key(false)
            .with_restricted(true)
            .with_key_derivation_function_scheme(KeyDerivationFunctionScheme::Null)
            .build()
            .map_err(cmd("AK parameters"))?;
        let public = PublicBuilder::new()
            .with_public_algorithm(PublicAlgorithm::Ecc)
            .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
            .with_object_attributes(attributes)
            .with_ecc_parameters(params)
            .with_ecc_unique_identifier(EccPoint::default())
            .build()
            .map_err(cmd("AK template"))?;
        let created = self
            .ctx
            .execute_with_nullauth_session(|c| {
                c.create_primary(Hierarchy::Endorsement, public, None, None, None, None)
            })
            .map_err(cmd("CreatePrimary (AK)"))?;
        let point = match &created.out_public {
            Public::Ecc { unique, .. } => {
                let mut p = vec![4u8];
                p.extend_from_slice(&left_pad32(unique.x().value()));
                p.extend_from_slice(&left_pad32(unique.y().value()));
                p
            }
            _ => {
                self.flush(created.key_handle.into());
                return Err(format("AK public", "not an ECC key"));
            }
        };
        Ok((created.key_handle, point))
    }

    /// Name the TPM gives the authority's public key (what PolicyAuthorize binds).
    fn authority_name(&mut self, authority: &PolicyAuthority) -> Result<Vec<u8>> {
        let public = authority_public(authority).map_err(cmd("policy key template"))?;
        let key = self
            .ctx
            .execute_without_session(|c| c.load_external_public(public, Hierarchy::Owner))
            .map_err(cmd("LoadExternal (policy key)"))?;
        let name = self
            .ctx
            .tr_get_name(key.into())
            .map_err(cmd("policy key name"));
        self.flush(key.into());
        Ok(name?.value().to_vec())
    }

    /// Runs `f` with a session salted by `srk` (parameter encryption: command side when
    /// `decrypt`, response side always), then flushes the session.
    fn with_session<T>(
        &mut self,
        srk: KeyHandle,
        kind: SessionType,
        decrypt: bool,
        f: impl FnOnce(&mut Context, AuthSession) -> Result<T>,
    ) -> Result<T> {
        let session = self
            .ctx
            .start_auth_session(
                Some(srk),
                None,
                None,
                kind,
                SymmetricDefinition::AES_128_CFB,
                HashingAlgorithm::Sha256,
            )
            .map_err(cmd("StartAuthSession"))?
            .ok_or_else(|| format("session", "the TPM returned no session"))?;
        let (attrs, mask) = SessionAttributesBuilder::new()
            .with_decrypt(decrypt)
            .with_encrypt(true)
            .with_continue_session(true)
            .build();
        let result = self
            .ctx
            .tr_sess_set_attributes(session, attrs, mask)
            .map_err(cmd("session attributes"))
            .and_then(|()| f(&mut self.ctx, session));
        self.ctx.clear_sessions();
        self.flush(SessionHandle::from(session).into());
        result
    }

    fn flush(&mut self, handle: ObjectHandle) {
        // A flush can only fail when the handle is already gone; nothing else to do then.
        let _ = self.ctx.flush_context(handle);
    }
}

fn authority_public(a: &PolicyAuthority) -> tss_esapi::Result<Public> {
    // Same TPMT_PUBLIC as systemd 252's conversion of a PEM key, so the key name (and with it
    // the policy digest) match the TPM2 tokens systemd-cryptenroll writes.
    let attributes = ObjectAttributesBuilder::new()
        .with_decrypt(true)
        .with_sign_encrypt(true)
        .with_user_with_auth(true)
        .build()?;
    let bits = RsaKeyBits::try_from(u16::try_from(a.bits()).unwrap_or(0))?;
    let exponent = RsaExponent::create(a.exponent().unwrap_or(0))?;
    PublicBuilder::new()
        .with_public_algorithm(PublicAlgorithm::Rsa)
        .with_name_hashing_algorithm(HashingAlgorithm::Sha256)
        .with_object_attributes(attributes)
        .with_rsa_parameters(
            PublicRsaParametersBuilder::new()
                .with_scheme(RsaScheme::Null)
                .with_key_bits(bits)
                .with_exponent(exponent)
                .with_is_signing_key(true)
                .with_is_decryption_key(true)
                .with_restricted(false)
                .build()?,
        )
        .with_rsa_unique_identifier(PublicKeyRsa::try_from(a.modulus())?)
        .build()
}

fn selection(pcrs: &[u8]) -> Result<PcrSelectionList> {
    let slots = pcrs
        .iter()
        .map(|p| PcrSlot::try_from(1u32 << p).map_err(cmd("PCR slot")))
        .collect::<Result<Vec<_>>>()?;
    PcrSelectionListBuilder::new()
        .with_selection(HashingAlgorithm::Sha256, &slots)
        .build()
        .map_err(cmd("PCR selection"))
}

fn slot_index(slot: PcrSlot) -> u8 {
    u32::from(slot).trailing_zeros() as u8
}

fn left_pad32(v: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let n = v.len().min(32);
    out[32 - n..].copy_from_slice(&v[v.len() - n..]);
    out
}

fn split_tpm2b(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let len = usize::from(u16::from_be_bytes([*b.first()?, *b.get(1)?]));
    let body = b.get(2..2 + len)?;
    Some((body, &b[2 + len..]))
}

pub(crate) fn hex_decode(what: &'static str, s: &str) -> Result<Vec<u8>> {
    hex::decode(s.trim()).map_err(|e| format(what, e))
}
