//! The models: one server per I/O concurrency model, behind one contract.
//!
//! Read bottom up: [`contract`] (what a model is and promises, with the defaults a plain model
//! takes), `parts/` (the machinery several models share: listeners, the edge- and
//! level-triggered loops, the blocking models' connection threads, the idle sweep), one file or
//! folder per model, and this registry: [`MODELS`] and the look-ups over it.

pub mod contract;
pub mod parts;

mod blocking;
mod multi_reactor;
mod proactor_emulated;
mod proactor_iocp;
mod proactor_uring;
mod reactor;
mod reactor_pool;
mod reuseport;
mod threadpool;
mod tokio_rt;

pub use contract::{
    Model, Poller, RunningServer, ServerConfig, Threads, FD_SETSIZE, SELECT_MAX_CONNECTIONS,
    SERVER_OWN_FDS,
};
pub use parts::listener::{bind, BACKLOG};
pub use proactor_uring::options::{UringListener, UringOptions, UringSetup, ZC_MIN_BYTES};

/// Every model this build knows, in the order `bench run --all` runs them.
pub const MODELS: &[Model] = &[
    blocking::MODEL,
    threadpool::MODEL,
    reactor::MODEL,
    multi_reactor::MODEL,
    reactor_pool::MODEL,
    reuseport::MODEL,
    proactor_uring::MODEL,
    proactor_iocp::MODEL,
    proactor_emulated::MODEL,
    tokio_rt::MODEL,
];

/// A model by its name; the error lists the valid names (the words of `--model`'s error).
pub fn find(name: &str) -> Result<&'static Model, String> {
    Model::by_name(name).map_err(|e| e.to_string())
}

impl Model {
    /// Looks a model up by name; the error lists the valid names.
    pub fn by_name(name: &str) -> Result<&'static Model, crate::Error> {
        MODELS.iter().find(|m| m.name == name).ok_or_else(|| {
            crate::Error::Usage(format!(
                "unknown model `{name}`: choose one of {} (see `bench models`)",
                names().join(", ")
            ))
        })
    }

    /// The poller this model runs with when `--poller` is `requested`. Without `--poller`: the
    /// model's default, or `None` for a model that waits on no poller. With it: that poller, or
    /// a usage error (exit code 2) naming the fix when the model cannot use it.
    pub fn poller(&self, requested: Option<Poller>) -> Result<Option<Poller>, crate::Error> {
        match (requested, self.pollers.first()) {
            (None, default) => Ok(default.copied()),
            (Some(p), _) if self.pollers.contains(&p) => Ok(Some(p)),
            (Some(p), None) => Err(crate::Error::Usage(format!(
                "--poller {} does not apply to model `{}`, which waits on no readiness poller: \
                 drop --poller, or use it with {}",
                p.name(),
                self.name,
                poller_models().join(", ")
            ))),
            (Some(p), Some(_)) => Err(crate::Error::Usage(format!(
                "model `{}` cannot use --poller {}: choose one of {}",
                self.name,
                p.name(),
                self.pollers
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }
}

/// The names of every model, in order.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|m| m.name).collect()
}

/// The names of the models that take `--poller`.
pub fn poller_models() -> Vec<&'static str> {
    MODELS
        .iter()
        .filter(|m| !m.pollers.is_empty())
        .map(|m| m.name)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::{find, MODELS};

    #[test]
    fn find_knows_every_model_and_names_them_all_when_it_does_not() {
        for m in MODELS {
            assert_eq!(find(m.name).unwrap().name, m.name);
        }
        let e = find("nginx").unwrap_err();
        assert!(e.contains("blocking, threadpool, reactor"), "{e}");
    }

    #[test]
    fn only_threadpool_caps_its_live_connections_at_its_thread_count() {
        let capped: Vec<_> = MODELS
            .iter()
            .filter(|m| m.threads_cap_live_connections)
            .map(|m| m.name)
            .collect();
        assert_eq!(capped, ["threadpool"]);
    }
}
