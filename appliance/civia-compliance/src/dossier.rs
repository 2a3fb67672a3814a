//! The model's dossier (AI Act Annex XII): the description the integrator ships next to the
//! weights (`<stem>.dossier.json`, or `dossier.json` of a model bundle), read bounded and
//! accepted only when it names the SHA-256 of the weights actually loaded.

use std::io::Read;
use std::path::{Path, PathBuf};

/// Largest dossier file read.
const MAX_DOSSIER_BYTES: u64 = 1 << 20;

/// A dossier as JSON: an object.
pub type Dossier = serde_json::Map<String, serde_json::Value>;

/// Why no verified dossier can be given.
#[derive(Debug, thiserror::Error)]
pub enum DossierError {
    #[error("No dossier next to the model file ({}).", .0.display())]
    NotFound(PathBuf),
    #[error("The dossier {} is not a JSON object: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    #[error("The dossier {} describes other weights than the loaded ones (sha256 {sha256}).", path.display())]
    Mismatch { path: PathBuf, sha256: String },
}

/// The dossier next to `weights`, checked against `sha256`, the hash of the loaded weights.
pub fn load_verified(weights: &Path, sha256: &str) -> Result<Dossier, DossierError> {
    let stem = weights
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let candidates = [
        weights.with_file_name(format!("{stem}.dossier.json")),
        weights.with_file_name("dossier.json"),
    ];
    let Some(path) = candidates.iter().find(|p| p.is_file()) else {
        return Err(DossierError::NotFound(candidates[0].clone()));
    };
    let mut text = String::new();
    let read =
        std::fs::File::open(path).and_then(|f| f.take(MAX_DOSSIER_BYTES).read_to_string(&mut text));
    let dossier = read
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_str::<Dossier>(&text).map_err(|e| e.to_string()))
        .map_err(|message| DossierError::Invalid {
            path: path.clone(),
            message,
        })?;
    if dossier.get("sha256").and_then(|v| v.as_str()) != Some(sha256) {
        return Err(DossierError::Mismatch {
            path: path.clone(),
            sha256: sha256.to_string(),
        });
    }
    Ok(dossier)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_checked_and_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let weights = dir.path().join("model.gguf");
        assert!(matches!(
            load_verified(&weights, "aa"),
            Err(DossierError::NotFound(p)) if p.ends_with("model.dossier.json")
        ));
        std::fs::write(dir.path().join("dossier.json"), "[1]").expect("write");
        assert!(matches!(
            load_verified(&weights, "aa"),
            Err(DossierError::Invalid { .. })
        ));
        std::fs::write(dir.path().join("model.dossier.json"), r#"{"sha256":"bb"}"#).expect("write");
        assert!(matches!(
            load_verified(&weights, "aa"),
            Err(DossierError::Mismatch { .. })
        ));
        let d = load_verified(&weights, "bb").expect("verified");
        assert_eq!(d["sha256"], "bb");
    }
}
