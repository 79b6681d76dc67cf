//! `bench`: parse, run, print the error once with its causes, exit with the code the README gives
//! ("Exit codes").

fn main() {
    // A server the harness started held, to count its system calls from its first instruction.
    iomodels::run::exec_when_released();
    // A `bench run --scenario FILE` gets the file's options before its own, one command line
    // per point of its sweep.
    let expanded = match iomodels::cli::scenario::expand(std::env::args_os().collect()) {
        Ok(expanded) => expanded,
        Err(err) => {
            iomodels::errln!("error: {err}");
            std::process::exit(err.exit_code());
        }
    };
    match iomodels::app::execute_expanded(expanded) {
        Ok(code) => std::process::exit(code),
        Err(err) => {
            iomodels::errln!("error: {err:#}");
            std::process::exit(iomodels::error::exit_code_of(&err));
        }
    }
}
