//! The `postdesk` binary: parse the command line, run it, map errors to exit
//! codes (0 success, 65 unusable input, 75 try again later, 78 bad configuration,
//! 1 anything else).

use clap::Parser;
use postdesk::cli::{self, Cli, ConfigProblem, DataError, TempFail};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            if e.downcast_ref::<ConfigProblem>().is_some() {
                ExitCode::from(78)
            } else if e.downcast_ref::<DataError>().is_some() {
                ExitCode::from(65)
            } else if e.downcast_ref::<TempFail>().is_some() {
                ExitCode::from(75)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
