//! The worker's errors.

use civia_ipc::worker::StartError;
use civia_ipc::IpcError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Ipc(#[from] IpcError),
    /// The worker stopped before serving: handshake, or a model refused (already reported
    /// to the supervisor).
    #[error(transparent)]
    Start(#[from] StartError),
}
