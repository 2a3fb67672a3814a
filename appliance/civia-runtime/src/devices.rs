//! The compute devices llama.cpp sees in this process, and how many layers it offloads:
//! the same facts for every worker that links llama.cpp (the runtime and embedding workers).

use civia_ipc::{ComputeDevice, DeviceKind};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::LlamaBackendDeviceType;

/// The devices llama.cpp found (the CPU always; GPUs with a GPU backend built in and a
/// driver present).
pub fn compute_devices() -> Vec<ComputeDevice> {
    llama_cpp_2::list_llama_ggml_backend_devices()
        .into_iter()
        .map(|d| ComputeDevice {
            name: d.name,
            description: d.description,
            kind: match d.device_type {
                LlamaBackendDeviceType::Cpu => DeviceKind::Cpu,
                LlamaBackendDeviceType::Gpu => DeviceKind::Gpu,
                LlamaBackendDeviceType::IntegratedGpu => DeviceKind::IntegratedGpu,
                _ => DeviceKind::Accelerator,
            },
            memory_bytes: d.memory_total as u64,
        })
        .collect()
}

/// Layers llama.cpp puts on a GPU: the configured count bounded by the model's layers (plus
/// its output layer), when the backend can offload and found a GPU; else none.
pub fn offloaded_layers(
    backend: &LlamaBackend,
    devices: &[ComputeDevice],
    configured: u32,
    n_layer: u32,
) -> u32 {
    let gpu = devices
        .iter()
        .any(|d| matches!(d.kind, DeviceKind::Gpu | DeviceKind::IntegratedGpu));
    if gpu && backend.supports_gpu_offload() {
        configured.min(n_layer.saturating_add(1))
    } else {
        0
    }
}
