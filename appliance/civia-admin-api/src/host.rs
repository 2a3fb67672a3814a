//! The host facts both `/admin/status` and the compliance documents report (one reading,
//! through `civia-system`), read off the async executor.

use civia_api::{ApiError, ApiState};

/// The machine's facts for the box's state directory.
pub(crate) async fn facts(st: &ApiState) -> Result<civia_system::HostInfo, ApiError> {
    let state_dir = st.config.state_dir.clone();
    tokio::task::spawn_blocking(move || civia_system::Collector::new("/").host(&state_dir))
        .await
        .map_err(|e| ApiError::internal(format!("host task failed: {e}")))
}
