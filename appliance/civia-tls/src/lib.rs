//! The box's own certificate authority and the TLS configuration of its listeners.
//!
//! Owns: the box CA and the server certificate it signs for the configured host names and
//! addresses (397 days at most, never past the CA; renewed at start when under 30 days are
//! left, when the names change or when the CA changed); the rustls server configuration of the
//! ANSSI TLS guide profile: TLS 1.2 and 1.3 only, forward-secret AEAD suites only (ECDHE +
//! AES-GCM or ChaCha20-Poly1305), ECDHE groups X25519, P-256, P-384.
//!
//! The CA (ECDSA P-256) is constrained, because agents install it in their browsers: a
//! critical NameConstraints extension permits only the box's DNS names and the LAN ranges
//! ([`CaPolicy`]), so its key cannot sign a certificate any browser would accept for another
//! site. Its life is short (`[api] tls_ca_days`, 3 years by default) and it is replaced at
//! start once under `tls_ca_rotate_days` are left, when its constraints no longer match the
//! configuration, or when it is an older unconstrained CA. Its private key is never written:
//! it is derived at each start from a 32-byte seed the caller unseals (the `tls-ca` secret of
//! `civia-tpm`'s `SecretStore`), one key per CA generation (`ca.crt` says which generation by
//! its public key). A key file left by an older version (`ca.key`) is deleted.
//!
//! Must never: write the CA's private key, write a private key with permissions wider than
//! 0600, issue a certificate outside the CA's constraints, accept a protocol or suite outside
//! that profile, or reach the network (no ACME, no OCSP).

use rcgen::{
    BasicConstraints, CertificateParams, CidrSubnet, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, GeneralSubtree, IsCa, KeyPair, KeyUsagePurpose, NameConstraints,
    SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::{GeneralName, ParsedExtension};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS files in {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("{path} is not a valid PEM certificate or key: {why}")]
    Parse { path: PathBuf, why: String },
    #[error("TLS configuration refused: {0}")]
    Config(#[from] rustls::Error),
    #[error("the CA key seed must be 32 bytes, not {0}")]
    Seed(usize),
    #[error("{0}")]
    Policy(String),
}

pub type Result<T> = std::result::Result<T, TlsError>;

const SERVER_DAYS: i64 = 397;
const RENEW_BEFORE_DAYS: i64 = 30;
/// CA generations looked for when matching `ca.crt` to the seed (one per rotation).
const MAX_GENERATIONS: u32 = 4096;

/// What the box CA may certify, and how long it lives.
#[derive(Clone, Debug)]
pub struct CaPolicy {
    /// Permitted DNS subtrees (a name and its subdomains): the box's names.
    pub dns: Vec<String>,
    /// Permitted IP ranges `(network, prefix length)`: the LAN ranges.
    pub ip_ranges: Vec<(IpAddr, u8)>,
    /// Life of a new CA, in days.
    pub ca_days: i64,
    /// A CA with fewer days left is replaced at start.
    pub rotate_before_days: i64,
}

/// The CA and the rustls configuration built on the server certificate.
pub struct TlsMaterial {
    /// The CA certificate, for `GET /ca.crt` and the agents' browsers.
    pub ca_pem: String,
    /// SHA-256 of the CA certificate (DER), as `AB:CD:…`, for the console and the agents.
    pub ca_fingerprint: String,
    /// The CA's end of validity (Unix seconds).
    pub ca_not_after: i64,
    /// The CA generation (0 for the first, then one more at each rotation).
    pub ca_generation: u32,
    /// True when this start created or replaced the CA: the agents must install it again.
    pub ca_rotated: bool,
    pub server_config: Arc<rustls::ServerConfig>,
    /// True when this start created or renewed the server certificate.
    pub renewed: bool,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Writes a file atomically and durably (temporary file, fsync, rename, directory fsync)
/// with the given mode.
fn write_file(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    civia_base::fs::write_atomic(path, data, mode).map_err(|e| TlsError::Io {
        path: e.path,
        source: e.source,
    })
}

fn read(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

fn parse_err(path: &Path, why: impl ToString) -> TlsError {
    TlsError::Parse {
        path: path.to_path_buf(),
        why: why.to_string(),
    }
}

/// The CA key of `generation`, derived from the 32-byte seed: SHA-256 over a label, the
/// generation, a counter and the seed, until the value is a valid P-256 scalar.
fn derive_ca_key(seed: &[u8], generation: u32) -> Result<KeyPair> {
    if seed.len() != 32 {
        return Err(TlsError::Seed(seed.len()));
    }
    for counter in 0u32..=u32::MAX {
        let mut h = Sha256::new();
        h.update(b"civia-tls-ca-p256-v1\0");
        h.update(generation.to_be_bytes());
        h.update(counter.to_be_bytes());
        h.update(seed);
        let scalar = zeroize::Zeroizing::new(h.finalize());
        // Fails only for zero or values at or above the group order (probability ~2^-32).
        if let Ok(secret) = p256::SecretKey::from_slice(&scalar) {
            use p256::pkcs8::EncodePrivateKey;
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| TlsError::Policy(format!("CA key encoding: {e}")))?;
            return Ok(KeyPair::try_from(der.as_bytes())?);
        }
    }
    Err(TlsError::Policy("no valid CA key from the seed".into()))
}

fn mask(prefix: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            let bits = (prefix as usize).saturating_sub(i * 8).min(8);
            if bits == 0 {
                0
            } else {
                0xffu8 << (8 - bits)
            }
        })
        .collect()
}

/// The network and mask bytes of a range, as in a NameConstraints iPAddress.
fn range_bytes(ip: IpAddr, prefix: u8) -> Vec<u8> {
    let addr: Vec<u8> = match ip {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    let m = mask(prefix, addr.len());
    let mut out: Vec<u8> = addr.iter().zip(&m).map(|(a, m)| a & m).collect();
    out.extend(m);
    out
}

impl CaPolicy {
    fn check(&self) -> Result<()> {
        if self.dns.is_empty() && self.ip_ranges.is_empty() {
            return Err(TlsError::Policy(
                "the CA must permit at least one name or range".into(),
            ));
        }
        for (ip, p) in &self.ip_ranges {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            if *p > max {
                return Err(TlsError::Policy(format!("{ip}/{p}: prefix over {max}")));
            }
        }
        if self.ca_days < 2
            || self.rotate_before_days < 1
            || self.rotate_before_days >= self.ca_days
        {
            return Err(TlsError::Policy(format!(
                "CA life {} days and rotation {} days before its end: need 1 <= rotation < life",
                self.ca_days, self.rotate_before_days
            )));
        }
        Ok(())
    }

    /// The permitted subtrees as comparable strings.
    fn wanted(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .dns
            .iter()
            .map(|d| format!("dns:{}", d.to_ascii_lowercase()))
            .chain(
                self.ip_ranges
                    .iter()
                    .map(|(ip, p)| format!("ip:{:02x?}", range_bytes(*ip, *p))),
            )
            .collect();
        v.sort();
        v.dedup();
        v
    }

    fn constraints(&self) -> NameConstraints {
        let mut permitted: Vec<GeneralSubtree> = self
            .dns
            .iter()
            .map(|d| GeneralSubtree::DnsName(d.to_ascii_lowercase()))
            .collect();
        permitted.extend(
            self.ip_ranges
                .iter()
                .map(|(ip, p)| GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(*ip, *p))),
        );
        NameConstraints {
            permitted_subtrees: permitted,
            excluded_subtrees: Vec::new(),
        }
    }
}

fn new_ca(box_name: &str, key: &KeyPair, policy: &CaPolicy) -> Result<String> {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Civia");
    dn.push(DnType::CommonName, format!("Civia CA {box_name}"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p.name_constraints = Some(policy.constraints());
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(policy.ca_days);
    Ok(p.self_signed(key)?.pem())
}

fn new_server_cert(
    ca_pem: &str,
    ca_key: &KeyPair,
    hosts: &[String],
    addrs: &[IpAddr],
) -> Result<(String, String)> {
    let ca_params = CertificateParams::from_ca_cert_pem(ca_pem)?;
    let ca_end = ca_params.not_after;
    let issuer = ca_params.self_signed(ca_key)?;
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::new(hosts.to_vec())?;
    p.subject_alt_names
        .extend(addrs.iter().map(|a| SanType::IpAddress(*a)));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Civia");
    dn.push(
        DnType::CommonName,
        hosts
            .first()
            .cloned()
            .unwrap_or_else(|| "civia.local".into()),
    );
    p.distinguished_name = dn;
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    // Says which CA (generation) issued it, checked at start.
    p.use_authority_key_identifier_extension = true;
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = (now + Duration::days(SERVER_DAYS)).min(ca_end);
    let cert = p.signed_by(&key, &issuer, ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The facts of a CA certificate that decide whether it stays.
struct CaFacts {
    fingerprint: String,
    not_after: i64,
    lifetime_days: i64,
    public_key: Vec<u8>,
    key_id: Option<Vec<u8>>,
    /// Permitted subtrees as comparable strings, when the extension is critical.
    constraints: Option<Vec<String>>,
}

fn ca_facts(path: &Path, pem: &str) -> Result<CaFacts> {
    let (_, der) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| parse_err(path, e))?;
    let cert = der.parse_x509().map_err(|e| parse_err(path, e))?;
    let v = cert.validity();
    let mut key_id = None;
    let mut constraints = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => key_id = Some(k.0.to_vec()),
            ParsedExtension::NameConstraints(nc) if ext.critical => {
                let mut names: Vec<String> = nc
                    .permitted_subtrees
                    .iter()
                    .flatten()
                    .filter_map(|t| match &t.base {
                        GeneralName::DNSName(d) => Some(format!("dns:{}", d.to_ascii_lowercase())),
                        GeneralName::IPAddress(b) => Some(format!("ip:{:02x?}", b)),
                        _ => None,
                    })
                    .collect();
                names.sort();
                names.dedup();
                if nc.excluded_subtrees.is_none() {
                    constraints = Some(names);
                }
            }
            _ => {}
        }
    }
    Ok(CaFacts {
        fingerprint: fingerprint(&der.contents),
        not_after: v.not_after.timestamp(),
        lifetime_days: (v.not_after.timestamp() - v.not_before.timestamp()) / 86400,
        public_key: cert.public_key().subject_public_key.data.to_vec(),
        key_id,
        constraints,
    })
}

/// `AB:CD:…`: the SHA-256 of `der`, as browsers show it.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Whether `pem` is a certificate still valid for a while, naming exactly these names, and
/// issued by the CA whose key identifier is `ca_key_id`.
fn still_good(
    path: &Path,
    pem: &str,
    hosts: &[String],
    addrs: &[IpAddr],
    ca_key_id: Option<&[u8]>,
) -> Result<bool> {
    let (_, der) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| parse_err(path, e))?;
    let cert = der.parse_x509().map_err(|e| parse_err(path, e))?;
    let left = cert.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
    if left < RENEW_BEFORE_DAYS * 86400 {
        return Ok(false);
    }
    let issued_by = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(a) => a.key_identifier.as_ref().map(|k| k.0),
            _ => None,
        });
    if ca_key_id.is_none() || issued_by != ca_key_id {
        return Ok(false);
    }
    let mut names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(d) => names.push(d.to_string()),
                GeneralName::IPAddress(b) => match b.len() {
                    4 => ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap_or_default())),
                    16 => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap_or_default())),
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let mut want_names = hosts.to_vec();
    want_names.sort();
    names.sort();
    let mut want_ips = addrs.to_vec();
    want_ips.sort();
    ips.sort();
    Ok(names == want_names && ips == want_ips)
}

/// The protocol versions and suites of the ANSSI profile.
pub fn server_config(cert_pem: &str, key_pem: &str, path: &Path) -> Result<rustls::ServerConfig> {
    // PEM through rustls-pki-types (rustls-pemfile is archived: RUSTSEC-2025-0134).
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| parse_err(path, e))?;
    let key: PrivateKeyDer<'static> =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| match e {
            rustls::pki_types::pem::Error::NoItemsFound => parse_err(path, "no private key"),
            e => parse_err(path, e),
        })?;
    let mut p = provider::default_provider();
    p.cipher_suites = vec![
        provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        // For a commune's own RSA certificate: still forward-secret AEAD only.
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    p.kx_groups = vec![
        provider::kx_group::X25519,
        provider::kx_group::SECP256R1,
        provider::kx_group::SECP384R1,
    ];
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(p))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(cfg)
}

/// The generation whose derived key is the one of the CA with public key `public`.
fn generation_of(seed: &[u8], public: &[u8]) -> Result<Option<u32>> {
    for g in 0..MAX_GENERATIONS {
        if derive_ca_key(seed, g)?.public_key_raw() == public {
            return Ok(Some(g));
        }
    }
    Ok(None)
}

/// Loads the CA and server certificate from `dir` (creating the directory, the CA and the
/// certificate as needed, replacing a CA that must rotate) and builds the server
/// configuration. `seed` is the 32-byte secret the CA keys are derived from.
pub fn load_or_create(
    dir: &Path,
    seed: &[u8],
    policy: &CaPolicy,
    hosts: &[String],
    addrs: &[IpAddr],
) -> Result<TlsMaterial> {
    policy.check()?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let ca_crt = dir.join("ca.crt");
    let (srv_crt, srv_key) = (dir.join("server.crt"), dir.join("server.key"));
    let now = OffsetDateTime::now_utc().unix_timestamp();

    // Keep the current CA only if it is ours (its key derives from the seed), constrained
    // as configured, not older-style long-lived, and not near its end.
    let mut next_generation = 0;
    let mut current = None;
    if let Some(pem) = read(&ca_crt)? {
        match ca_facts(&ca_crt, &pem) {
            Ok(f) => match generation_of(seed, &f.public_key)? {
                Some(g) => {
                    next_generation = g + 1;
                    let keep = f.constraints.as_ref() == Some(&policy.wanted())
                        && f.lifetime_days <= policy.ca_days + 1
                        && f.not_after - now > policy.rotate_before_days * 86400;
                    if keep {
                        current = Some((pem, f, g));
                    }
                }
                None => log::warn!(
                    "{}: the CA key is not derived from the sealed secret (older box CA or another secret): a new CA replaces it",
                    ca_crt.display()
                ),
            },
            Err(e) => log::warn!("{e}: a new CA replaces it"),
        }
    }
    let ca_rotated = current.is_none();
    let (ca_pem, facts, generation) = match current {
        Some(c) => c,
        None => {
            let key = derive_ca_key(seed, next_generation)?;
            let pem = new_ca(
                hosts.first().map_or("civia.local", String::as_str),
                &key,
                policy,
            )?;
            let facts = ca_facts(&ca_crt, &pem)?;
            write_file(&ca_crt, pem.as_bytes(), 0o644)?;
            (pem, facts, next_generation)
        }
    };
    // A key file of an older version: the key now lives only in the sealed secret.
    let legacy = dir.join("ca.key");
    match std::fs::remove_file(&legacy) {
        Ok(()) => log::warn!(
            "{}: plaintext CA key of an older version deleted",
            legacy.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(&legacy)(e)),
    }

    let current = match (read(&srv_crt)?, read(&srv_key)?) {
        (Some(c), Some(k)) if still_good(&srv_crt, &c, hosts, addrs, facts.key_id.as_deref())? => {
            Some((c, k))
        }
        _ => None,
    };
    let renewed = current.is_none();
    let (cert_pem, key_pem) = match current {
        Some(x) => x,
        None => {
            let ca_key = derive_ca_key(seed, generation)?;
            let (c, k) = new_server_cert(&ca_pem, &ca_key, hosts, addrs)?;
            write_file(&srv_key, k.as_bytes(), 0o600)?;
            write_file(&srv_crt, c.as_bytes(), 0o644)?;
            (c, k)
        }
    };
    // The chain sent to clients: server certificate, then the CA.
    let chain = format!("{cert_pem}{ca_pem}");
    let server_config = Arc::new(server_config(&chain, &key_pem, &srv_crt)?);
    Ok(TlsMaterial {
        ca_pem,
        ca_fingerprint: facts.fingerprint,
        ca_not_after: facts.not_after,
        ca_generation: generation,
        ca_rotated,
        server_config,
        renewed,
    })
}

/// The commune's own certificate chain and key (PEM files) with the same TLS profile.
pub fn own_certificate(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>> {
    let chain = read(cert)?.ok_or_else(|| parse_err(cert, "file not found"))?;
    let key_pem = read(key)?.ok_or_else(|| parse_err(key, "file not found"))?;
    Ok(Arc::new(server_config(&chain, &key_pem, cert)?))
}

#[cfg(test)]
mod tests;
