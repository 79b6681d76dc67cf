//! `bench`: parse, run, print the error once with its causes, exit with the code SPEC.md gives.

use clap::Parser;

fn main() {
    // A server the harness started held, to count its system calls from its first instruction.
    iomodels::run::exec_when_released();
    // A `bench run --scenario FILE` gets the file's options before its own.
    let args = match iomodels::scenario::expand_args(std::env::args_os().collect()) {
        Ok(args) => args,
        Err(err) => {
            eprintln!("error: {err}");
            std::process::exit(err.exit_code());
        }
    };
    let cli = iomodels::cli::Cli::parse_from(args);
    match iomodels::app::execute(cli) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::exit(iomodels::error::exit_code_of(&err));
        }
    }
}
