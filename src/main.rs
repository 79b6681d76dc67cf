//! `bench`: parse, run, print the error once with its causes, exit with the code SPEC.md gives.

use clap::Parser;

fn main() {
    let cli = iomodels::cli::Cli::parse();
    match iomodels::app::execute(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(iomodels::error::exit_code_of(&err));
        }
    }
}
