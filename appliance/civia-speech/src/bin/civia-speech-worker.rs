//! `civia-speech-worker`: started by civiad with its IPC socket on fd 3, never by hand.

use std::process::ExitCode;

fn main() -> ExitCode {
    let level = std::env::var("CIVIA_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    env_logger::Builder::new()
        .parse_filters(&level)
        .format_target(false)
        .init();
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
