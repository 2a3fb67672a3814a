//! `civia`: see the `civia_cli` crate documentation.

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = civia_cli::Cli::parse();
    let stdin = std::io::stdin();
    let mut stdout = std::io::stdout().lock();
    match civia_cli::run(&cli, &mut stdin.lock(), &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("civia: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
