//! The `postdesk` binary: parse the command line, run it, map errors to exit
//! codes (0 success, 65 unusable input, 75 try again later, 78 bad configuration,
//! 1 anything else).

use clap::Parser;
use postdesk::cli::{self, Cli, ConfigProblem, DataError, TempFail};
use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
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

/// Caps glibc's malloc at two arenas. By default each thread that allocates
/// gets an arena of its own (up to 8 per core) which keeps what it freed: the
/// ingest processor's thread, the runtime's workers and SQLite's workers
/// took the daemon's peak RSS from 70 to 102 MB over 3,000 mails (ingest
/// bench), at no measurable gain in speed. Runs before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called while the
    // process has a single thread.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        // A fixed threshold (which turns glibc's sliding one off): blocks of
        // 16 MiB and more (argon2's 19 MiB) are mapped and unmapped on their
        // own. Otherwise the first freed argon2 block raises the threshold
        // and every later one stays in the heap: a flood of sign-ins left
        // hundreds of megabytes that were never given back. (4 MiB cost
        // ingest 17%: its 4 MB fetch groups were mapped and unmapped each.)
        libc::mallopt(libc::M_MMAP_THRESHOLD, 16 * 1024 * 1024);
    }
}
