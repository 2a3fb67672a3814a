//! The box's own certificate authority and the TLS configuration of its listeners.
//!
//! Owns: creating at first start (and then reusing) a CA (ECDSA P-256, 10 years) and a server
//! certificate it signs for the configured host names and addresses (397 days, renewed at
//! start when under 30 days are left or when the names change); the rustls server
//! configuration of the ANSSI TLS guide profile: TLS 1.2 and 1.3 only, forward-secret AEAD
//! suites only (ECDHE + AES-GCM or ChaCha20-Poly1305), ECDHE groups X25519, P-256, P-384.
//!
//! Must never: write a private key with permissions wider than 0600, accept a protocol or
//! suite outside that profile, or reach the network (no ACME, no OCSP).

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::crypto::ring as provider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use time::{Duration, OffsetDateTime};

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
}

pub type Result<T> = std::result::Result<T, TlsError>;

const CA_DAYS: i64 = 3650;
const SERVER_DAYS: i64 = 397;
const RENEW_BEFORE_DAYS: i64 = 30;

/// The CA and the rustls configuration built on the server certificate.
pub struct TlsMaterial {
    /// The CA certificate, for `GET /ca.crt` and the agents' browsers.
    pub ca_pem: String,
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

fn new_ca(box_name: &str) -> Result<(String, String)> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "Civia");
    dn.push(DnType::CommonName, format!("Civia CA {box_name}"));
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(CA_DAYS);
    let cert = p.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn new_server_cert(
    ca_pem: &str,
    ca_key_pem: &str,
    hosts: &[String],
    addrs: &[IpAddr],
) -> Result<(String, String)> {
    let ca_key = KeyPair::from_pem(ca_key_pem)?;
    let issuer = CertificateParams::from_ca_cert_pem(ca_pem)?.self_signed(&ca_key)?;
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
    let now = OffsetDateTime::now_utc();
    p.not_before = now - Duration::days(1);
    p.not_after = now + Duration::days(SERVER_DAYS);
    let cert = p.signed_by(&key, &issuer, &ca_key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Whether `pem` is a certificate still valid for a while and naming exactly these names.
fn still_good(path: &Path, pem: &str, hosts: &[String], addrs: &[IpAddr]) -> Result<bool> {
    let (_, der) =
        x509_parser::pem::parse_x509_pem(pem.as_bytes()).map_err(|e| parse_err(path, e))?;
    let cert = der.parse_x509().map_err(|e| parse_err(path, e))?;
    let left = cert.validity().not_after.timestamp() - OffsetDateTime::now_utc().unix_timestamp();
    if left < RENEW_BEFORE_DAYS * 86400 {
        return Ok(false);
    }
    let mut names = Vec::new();
    let mut ips = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                x509_parser::extensions::GeneralName::DNSName(d) => names.push(d.to_string()),
                x509_parser::extensions::GeneralName::IPAddress(b) => match b.len() {
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
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut cert_pem.as_bytes())
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| parse_err(path, e))?;
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_bytes())
        .map_err(|e| parse_err(path, e))?
        .ok_or_else(|| parse_err(path, "no private key"))?;
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

/// Loads the CA and server certificate from `dir` (creating the directory, the CA and the
/// certificate as needed) and builds the server configuration.
pub fn load_or_create(dir: &Path, hosts: &[String], addrs: &[IpAddr]) -> Result<TlsMaterial> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(io(dir))?;
    let (ca_crt, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (srv_crt, srv_key) = (dir.join("server.crt"), dir.join("server.key"));
    let (ca_pem, ca_key_pem) = match (read(&ca_crt)?, read(&ca_key)?) {
        (Some(c), Some(k)) => (c, k),
        _ => {
            let (c, k) = new_ca(hosts.first().map_or("civia.local", String::as_str))?;
            // Key first: a crash between the two writes leaves no certificate without its key.
            write_file(&ca_key, k.as_bytes(), 0o600)?;
            write_file(&ca_crt, c.as_bytes(), 0o644)?;
            (c, k)
        }
    };
    let current = match (read(&srv_crt)?, read(&srv_key)?) {
        (Some(c), Some(k)) if still_good(&srv_crt, &c, hosts, addrs)? => Some((c, k)),
        _ => None,
    };
    let renewed = current.is_none();
    let (cert_pem, key_pem) = match current {
        Some(x) => x,
        None => {
            let (c, k) = new_server_cert(&ca_pem, &ca_key_pem, hosts, addrs)?;
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
mod tests {
    use super::*;

    #[test]
    fn created_once_reused_then_renewed_when_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        let hosts = vec!["civia.local".to_string()];
        let addrs = vec!["127.0.0.1".parse().unwrap()];
        let a = load_or_create(&tls, &hosts, &addrs).unwrap();
        assert!(a.renewed && a.ca_pem.contains("BEGIN CERTIFICATE"));
        let mode = |f: &str| std::fs::metadata(tls.join(f)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("ca.key"), 0o600);
        assert_eq!(mode("server.key"), 0o600);
        assert_eq!(
            std::fs::metadata(&tls).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let b = load_or_create(&tls, &hosts, &addrs).unwrap();
        assert!(!b.renewed);
        assert_eq!(a.ca_pem, b.ca_pem);
        let c = load_or_create(&tls, &["mairie.example".into()], &addrs).unwrap();
        assert!(c.renewed, "new names need a new certificate");
        assert_eq!(a.ca_pem, c.ca_pem, "the CA stays");
    }

    #[test]
    fn garbage_files_are_reported_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let tls = dir.path().join("tls");
        load_or_create(&tls, &["civia.local".into()], &[]).unwrap();
        std::fs::write(tls.join("server.crt"), "not a certificate").unwrap();
        let err = load_or_create(&tls, &["civia.local".into()], &[])
            .err()
            .unwrap();
        assert!(err.to_string().contains("server.crt"), "{err}");
    }
}
