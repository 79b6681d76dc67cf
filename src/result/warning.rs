//! The warnings a run carries: one variant per kind, its figures typed. The result file holds
//! each as its text (a warning read back from a file is [`Warning::Text`]); `bench run`
//! groups the warnings of its runs by kind and gives the figures that differ as ranges, which
//! [`Warning::kind`] and [`Warning::render`] make possible without reading the text back.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One warning of a run (or of the whole `bench run`, or of an SLO search).
#[derive(Clone, Debug, PartialEq)]
pub enum Warning {
    /// The server's and the client's CPUs share some.
    CpusOverlap { server: String, client: String },
    /// The machine's load average at the start was over half its CPUs.
    MachineBusy { load: f64, cpus: usize },
    /// `--accounting separate`: the pass that counted failed.
    CountingFailed { failure: String },
    /// `threadpool` with more live connections than workers.
    UnservedByDesign {
        workers: usize,
        starved: u64,
        connections: usize,
    },
    /// Open loop: the client sent late (µs after the due time).
    SentLate { p99_us: f64, max_us: f64 },
    /// Open loop: less than 99% of the asked rate was answered.
    RateMissed {
        achieved: f64,
        rate: f64,
        why: Shortfall,
    },
    /// The client was busy (and, in an open loop, sent late); `flag` is the option that gives
    /// it more CPUs.
    ClientSaturated {
        busy_percent: f64,
        open_loop: bool,
        flag: String,
    },
    /// Connections that completed no request in the window.
    Starved { starved: u64, connections: usize },
    /// No request completed in the window.
    NoRequest,
    /// The first error of a kind, as the client saw it.
    FirstError { kind: String, text: String },
    /// Errors before the window (connect phase and warm-up), by kind.
    WarmupErrors { count: u64, kinds: String },
    /// An SLO search whose probe at the bracket's edge had a saturated client.
    ClientBound { busy_percent: f64, rate: String },
    /// A segment (`--segment I/N`) began its timeline this long after its start (`--start-at`,
    /// or its parent's go time): its connections were not up in time.
    StartedLate {
        segment: String,
        late_s: f64,
        warmup_s: f64,
    },
    /// A warning as a result file holds it.
    Text(String),
}

/// A segment that began more than this late (s) is warned about: a sleep until the start time
/// overshoots by well under a millisecond.
pub const LATE_S: f64 = 0.010;

/// Why an open loop answered less than it asked.
#[derive(Clone, Debug, PartialEq)]
pub enum Shortfall {
    /// The client was busy this share of its CPUs.
    ClientBusy { busy_percent: f64 },
    /// Requests fell due with no connection free to send them.
    Unsent { unsent: u64, connections: usize },
    /// Neither: the server was slow.
    ServerSlow,
}

/// A number of a warning: its value, and how the text shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct Figure {
    pub value: f64,
    pub shown: String,
}

impl Figure {
    fn new(value: f64, shown: String) -> Self {
        Figure { value, shown }
    }

    fn count(n: impl Into<u64>) -> Self {
        let n = n.into();
        Figure::new(n as f64, n.to_string())
    }

    /// `value` with `places` decimals, its value as shown (so that ranges compare what is
    /// printed).
    fn fixed(value: f64, places: usize) -> Self {
        let shown = format!("{value:.places$}");
        Figure::new(shown.parse().unwrap_or(value), shown)
    }
}

impl Warning {
    /// The text, each figure written by `fig` (in order of appearance, counted from 0).
    pub fn render(&self, fig: &mut dyn FnMut(usize, Figure) -> String) -> String {
        let mut at = 0;
        let mut f = |figure: Figure| {
            let text = fig(at, figure);
            at += 1;
            text
        };
        match self {
            Warning::CpusOverlap { server, client } => format!(
                "server CPUs {server} and client CPUs {client} overlap: the load generator \
                 competes with the server, so the figures understate the server (give them \
                 separate CPUs with --server-cpus and --client-cpus)"
            ),
            Warning::MachineBusy { load, cpus } => {
                let load = f(Figure::fixed(*load, 2));
                let cpus = f(Figure::count(*cpus as u64));
                format!(
                    "the machine was busy when the run started (load average {load} on {cpus} \
                     CPUs): expect noisy figures; repeat with --repeat and compare medians"
                )
            }
            Warning::CountingFailed { failure } => {
                format!("the counting pass failed, so there are no system call counts: {failure}")
            }
            Warning::UnservedByDesign {
                workers,
                starved,
                connections,
            } => {
                let served = (*connections as u64).saturating_sub(*starved);
                let w = f(Figure::count(*workers as u64));
                let w2 = f(Figure::count(*workers as u64));
                let starved = f(Figure::count(*starved));
                let of = f(Figure::count(*connections as u64));
                let served = f(Figure::count(served));
                let all = f(Figure::count(*connections as u64));
                format!(
                    "a pool of {w} worker thread(s) serves at most {w2} live connection(s): each \
                     worker keeps one connection until it closes, so {starved} of the {of} \
                     connections waited in the pool's queue unserved for the whole window, and \
                     the latencies of the {served} served say nothing about them (--threads \
                     {all} would serve every connection, with a thread each)"
                )
            }
            Warning::SentLate { p99_us, max_us } => {
                let p99 = f(Figure::fixed(*p99_us, 0));
                let max = f(Figure::fixed(*max_us, 0));
                format!(
                    "the load generator sent late: p99 {p99} µs after the due time on \
                     connections that were free (max {max} µs); that delay is in the corrected \
                     latency. Give the client more or quieter CPUs (--client-cpus)"
                )
            }
            Warning::RateMissed {
                achieved,
                rate,
                why,
            } => {
                let a = f(Figure::fixed(*achieved, 0));
                let r = f(Figure::fixed(*rate, 0));
                let share = f(Figure::fixed(achieved / rate * 100.0, 1));
                let why = match why {
                    Shortfall::ClientBusy { busy_percent } => format!(
                        "the load generator was busy {}% of its CPUs: give it more \
                         (--client-cpus, --client-threads)",
                        f(Figure::fixed(*busy_percent, 0))
                    ),
                    Shortfall::Unsent {
                        unsent,
                        connections,
                    } => format!(
                        "the server fell behind: {} requests fell due that no connection was \
                         free to send (each of the {} connections keeps one request in flight); \
                         the corrected latency includes their wait",
                        f(Figure::count(*unsent)),
                        f(Figure::count(*connections as u64))
                    ),
                    Shortfall::ServerSlow => "the server answered too slowly for the rate".into(),
                };
                format!("open loop: {a} req/s answered of the {r} asked for ({share}%): {why}")
            }
            Warning::ClientSaturated {
                busy_percent,
                open_loop: true,
                flag,
            } => format!(
                "client saturated: the load generator was busy {}% of its CPUs and sent late \
                 (see below), so the server may be faster than measured (give the client more \
                 CPUs with {flag})",
                f(Figure::fixed(*busy_percent, 0))
            ),
            Warning::ClientSaturated {
                busy_percent,
                open_loop: false,
                flag,
            } => format!(
                "client CPU saturated: the load generator was busy {}% of its CPUs, so the \
                 server may be faster than measured (give the client more CPUs with {flag}, or \
                 use fewer connections)",
                f(Figure::fixed(*busy_percent, 0))
            ),
            Warning::Starved {
                starved,
                connections,
            } => {
                let starved = f(Figure::count(*starved));
                let of = f(Figure::count(*connections as u64));
                format!(
                    "{starved} of {of} connections completed no request in the measured window \
                     (they waited for the server the whole time); their waits are in the \
                     latency figures as lower bounds"
                )
            }
            Warning::NoRequest => "no request completed in the measured window".into(),
            Warning::FirstError { kind, text } => format!("the first {kind} error said: {text}"),
            Warning::WarmupErrors { count, kinds } => {
                let count = f(Figure::count(*count));
                format!(
                    "{count} errors before the measured window (connect phase and warm-up): \
                     {kinds}"
                )
            }
            Warning::ClientBound { busy_percent, rate } => format!(
                "client-bound: the load generator was busy {}% of its CPUs at {rate} req/s, so \
                 the capacity found may be the client's (give it more CPUs: --client-cpus, \
                 --client-threads)",
                f(Figure::fixed(*busy_percent, 0))
            ),
            Warning::StartedLate {
                segment,
                late_s,
                warmup_s,
            } => {
                let late = f(Figure::fixed(*late_s, 3));
                if late_s > warmup_s {
                    format!(
                        "segment {segment} started {late} s after its start time, past its \
                         warm-up: its connections were not up in time, and its share of the \
                         window's first {} s is missing (start later, or connect fewer \
                         connections per segment)",
                        f(Figure::fixed(late_s - warmup_s, 3))
                    )
                } else {
                    format!(
                        "segment {segment} started {late} s after its start time (its \
                         connections were not up in time), inside its warm-up: the open loop's \
                         requests due meanwhile went out at once, late, before the window"
                    )
                }
            }
            Warning::Text(text) => text.clone(),
        }
    }

    /// The figures, in order of appearance.
    pub fn figures(&self) -> Vec<Figure> {
        let mut all = Vec::new();
        self.render(&mut |_, figure| {
            all.push(figure);
            String::new()
        });
        all
    }

    /// What warnings of one kind share: the text with every figure as `#`.
    pub fn kind(&self) -> String {
        self.render(&mut |_, _| "#".into())
    }

    /// Whether the warning says that the counting pass failed.
    pub fn is_counting_failure(&self) -> bool {
        match self {
            Warning::CountingFailed { .. } => true,
            Warning::Text(t) => t.starts_with("the counting pass failed"),
            _ => false,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&mut |_, figure| figure.shown))
    }
}

impl From<String> for Warning {
    fn from(text: String) -> Self {
        Warning::Text(text)
    }
}

impl From<&str> for Warning {
    fn from(text: &str) -> Self {
        Warning::Text(text.into())
    }
}

/// Written as its text: the result file's format.
impl Serialize for Warning {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Warning {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Warning::Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_warning_is_written_and_read_as_its_text() {
        let w = Warning::Starved {
            starved: 49,
            connections: 50,
        };
        let json = serde_json::to_string(&w).unwrap();
        assert_eq!(
            json,
            "\"49 of 50 connections completed no request in the measured window (they waited \
             for the server the whole time); their waits are in the latency figures as lower \
             bounds\""
        );
        let back: Warning = serde_json::from_str(&json).unwrap();
        assert_eq!(back.to_string(), w.to_string());
    }

    #[test]
    fn figures_are_the_numbers_as_shown_and_the_kind_blanks_them() {
        let w = Warning::RateMissed {
            achieved: 9_412.4,
            rate: 10_000.0,
            why: Shortfall::ClientBusy { busy_percent: 97.2 },
        };
        let shown: Vec<String> = w.figures().into_iter().map(|f| f.shown).collect();
        assert_eq!(shown, ["9412", "10000", "94.1", "97"]);
        assert_eq!(
            w.kind(),
            "open loop: # req/s answered of the # asked for (#%): the load generator was busy \
             #% of its CPUs: give it more (--client-cpus, --client-threads)"
        );
        // Another reason is another kind.
        let slow = Warning::RateMissed {
            achieved: 9_412.4,
            rate: 10_000.0,
            why: Shortfall::ServerSlow,
        };
        assert_ne!(slow.kind(), w.kind());
    }

    #[test]
    fn the_threadpools_warning_derives_the_served_count() {
        let w = Warning::UnservedByDesign {
            workers: 1,
            starved: 99,
            connections: 100,
        };
        assert_eq!(
            w.to_string(),
            "a pool of 1 worker thread(s) serves at most 1 live connection(s): each worker keeps \
             one connection until it closes, so 99 of the 100 connections waited in the pool's \
             queue unserved for the whole window, and the latencies of the 1 served say nothing \
             about them (--threads 100 would serve every connection, with a thread each)"
        );
    }
}
