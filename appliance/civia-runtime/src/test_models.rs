//! The test models (`.cache/models`, or `$CIVIA_MODEL_DIR`) and llama.cpp's backend, which
//! is initialised once per process.

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use std::path::PathBuf;
use std::sync::OnceLock;

pub(crate) fn backend() -> &'static LlamaBackend {
    static B: OnceLock<LlamaBackend> = OnceLock::new();
    B.get_or_init(|| LlamaBackend::init().expect("llama.cpp backend"))
}

pub(crate) fn model(file: &str) -> LlamaModel {
    let dir = std::env::var_os("CIVIA_MODEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.cache/models"));
    let path = dir.join(file);
    assert!(
        path.exists(),
        "test model {} is missing: run appliance/scripts/install-models.sh",
        path.display()
    );
    LlamaModel::load_from_file(backend(), &path, &LlamaModelParams::default()).expect("model loads")
}
