use std::process::ExitCode;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::Parser;
use initguard::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    initguard::logging::init(cli.log_format);
    match initguard::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("initguard: {error:#}");
            ExitCode::from(2)
        }
    }
}
