//! Errors that decide the process's exit code (the README lists them: "Exit codes").
//!
//! Code that does I/O returns `anyhow::Result` with context naming the path or address that
//! failed; where the failure means something to the user (bad input, an environment that cannot
//! do it, a failure of the thing measured) it returns one of these, and `main` finds it in the
//! error's chain to pick the exit code.

/// An error whose kind fixes the exit code. The message must name the fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad usage or input: unknown model, bad duration, unreadable file. Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The environment cannot do it: model unavailable here, port in use. Exit code 3.
    #[error("{0}")]
    Environment(String),
    /// The run found a failure of the thing measured: invalid responses, a server that died.
    /// Exit code 1.
    #[error("{0}")]
    Measured(String),
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Measured(_) => 1,
            Error::Usage(_) => 2,
            Error::Environment(_) => 3,
        }
    }
}

/// The exit code for any error: the first [`Error`] in its chain decides, anything else is a
/// failure of the environment (an I/O error the user has to look at), code 3.
pub fn exit_code_of(err: &anyhow::Error) -> i32 {
    err.chain()
        .find_map(|cause| cause.downcast_ref::<Error>())
        .map_or(3, Error::exit_code)
}
