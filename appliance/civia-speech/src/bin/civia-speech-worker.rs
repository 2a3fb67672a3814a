//! `civia-speech-worker`: started by civiad with its IPC socket on fd 3, never by hand.

use std::process::ExitCode;

fn main() -> ExitCode {
    // Before anything starts a thread: the worker has no business on any network.
    let isolated = civia_ipc::isolate_network();
    let level = std::env::var("CIVIA_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    env_logger::Builder::new()
        .parse_filters(&level)
        .format_target(false)
        .init();
    if let Err(e) = isolated {
        log::warn!("speech worker: cannot leave the network namespace ({e}); relying on the service manager's isolation");
    }
    let Some(stream) = civia_ipc::inherited_socket() else {
        eprintln!("civia-speech-worker is started by civiad itself (IPC socket on fd 3)");
        return ExitCode::from(2);
    };
    match civia_speech::run_worker(stream) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("speech worker: {e}");
            ExitCode::FAILURE
        }
    }
}
