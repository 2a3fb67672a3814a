//! `civia-speech-worker`: started by civiad with its IPC socket on fd 3, never by hand.

use civia_ipc::worker::{worker_main, WorkerNames};
use std::process::ExitCode;

fn main() -> ExitCode {
    worker_main(
        &WorkerNames {
            name: "speech worker",
            command: "civia-speech-worker",
        },
        |level| {
            env_logger::Builder::new()
                .parse_filters(level)
                .format_target(false)
                .init()
        },
        civia_speech::run_worker,
    )
}
