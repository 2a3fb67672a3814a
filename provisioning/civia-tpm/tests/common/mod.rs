#![allow(dead_code)]
use std::process::Command;

/// An RSA 2048 key pair (PKCS#8 private PEM, SPKI public PEM) made by openssl (fast, unlike a
/// debug build of the `rsa` crate).
pub fn rsa_keypair(dir: &std::path::Path, name: &str) -> (String, String) {
    let priv_path = dir.join(format!("{name}.key.pem"));
    let pub_path = dir.join(format!("{name}.pub.pem"));
    let ok = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&priv_path)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl genpkey");
    let ok = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&priv_path)
        .arg("-out")
        .arg(&pub_path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "openssl pkey");
    (
        std::fs::read_to_string(priv_path).unwrap(),
        std::fs::read_to_string(pub_path).unwrap(),
    )
}
