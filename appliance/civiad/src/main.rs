//! `civiad`, the Civia supervisor daemon: started as `civiad --config PATH`; the same binary
//! started as `civiad runtime-worker` (by itself, never by hand) is the runtime worker, as
//! `civiad embed-worker` the embedding worker (the two share civiad's one link of llama.cpp),
//! and as `civiad extract-document` the process that reads one uploaded document under
//! limits (`civia_documents::isolated`).
//!
//! Owns: the command line, the exit statuses (0 on a signal, 2 on a bad configuration or a
//! failed start, [`civia_update::EXIT_TRIAL_UNHEALTHY`] for a bad trial boot) and the async
//! runtime; everything else is the library's ([`civiad::App`]).
//!
//! Must never: do more than parse, build and run (the wiring lives in `app.rs`, so the
//! tests build the same daemon).

use civia_config::Config;
use civiad::{logging, App, DaemonError, Stop};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "civiad", version, about = "Civia supervisor daemon")]
struct Cli {
    /// Configuration file (TOML); drop-ins are read from `<PATH>.d/*.toml`.
    #[arg(long, value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Sub>,
}

#[derive(Subcommand)]
enum Sub {
    /// Internal: the runtime worker, started by civiad with its IPC socket on fd 3.
    #[command(hide = true)]
    RuntimeWorker,
    /// Internal: the embedding worker, started by civiad with its IPC socket on fd 3.
    #[command(hide = true)]
    EmbedWorker,
    /// Internal: extracts the text of one document (request and file on stdin, answer on
    /// stdout), started by civiad under resource limits.
    #[command(hide = true)]
    ExtractDocument,
    /// Checks the configuration file and prints the effective values.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Sub::ExtractDocument) = cli.command {
        return match civia_documents::isolated::child_main() {
            0 => ExitCode::SUCCESS,
            _ => ExitCode::from(2),
        };
    }
    if let Some(Sub::RuntimeWorker) = cli.command {
        return civia_ipc::worker::worker_main(
            &civia_ipc::worker::WorkerNames {
                name: "runtime worker",
                command: "civiad runtime-worker",
            },
            logging::init,
            civia_runtime::run_worker,
        );
    }
    if let Some(Sub::EmbedWorker) = cli.command {
        return civia_ipc::worker::worker_main(
            &civia_ipc::worker::WorkerNames {
                name: "embedding worker",
                command: "civiad embed-worker",
            },
            logging::init,
            civia_embed::run_worker,
        );
    }
    let cfg = match cli.config.as_deref().map(Config::load) {
        Some(Ok(cfg)) => cfg,
        Some(Err(e)) => {
            eprintln!("civiad: {e}");
            return ExitCode::from(2);
        }
        None => {
            eprintln!("civiad: {}", DaemonError::NoConfig);
            return ExitCode::from(2);
        }
    };
    if let Some(Sub::CheckConfig) = cli.command {
        println!("{cfg:#?}");
        return ExitCode::SUCCESS;
    }
    logging::init(&cfg.log.level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            log::error!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let run = async {
        // Watched from the start: a SIGTERM during start-up stops the daemon cleanly.
        let stop = civiad::systemd::shutdown_signal();
        App::builder(cfg).build().await?.run(stop).await
    };
    match rt.block_on(run) {
        Ok(Stop::Signal) => ExitCode::SUCCESS,
        // The unit's ExecStopPost= reboots on this status: back to the previous slot.
        Ok(Stop::TrialUnhealthy) => ExitCode::from(civia_update::EXIT_TRIAL_UNHEALTHY),
        Err(e) => {
            log::error!("{e}");
            ExitCode::from(2)
        }
    }
}
