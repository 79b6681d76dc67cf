//! One connection of `reactor-pool`, on the reactor's side: reading into its input, handing
//! a job to the workers when none is in flight, writing what a job brought back.

use std::io::{self, Read};

use mio::net::TcpStream;

use super::pool::Job;
use crate::models::parts::backlog::Backlog;
use crate::models::parts::idle::Idle;
use crate::models::parts::mio_loop::OUT_HIGH_WATER;
use crate::protocol::{Flow, Session};

/// Input waiting for a busy worker is read up to this, then reading from that connection
/// stops until the next job takes it: a job is at most this much input, and its reply (an
/// echo's is as long) joins a backlog of at most `OUT_HIGH_WATER`. It was 4 MiB: a
/// never-reading client's jobs then queued ahead of a well-behaved client's request, which
/// waited 2.5-3.2 s in issue 18's hostile runs. At 64 KiB a never-reading connection held
/// 256-287 KiB (echo) and 322-327 KiB (HTTP: the job's input, the session's held requests,
/// the input read meanwhile, a backlog a reply took past the mark; scripts/never-readers.py,
/// 1,000 connections), even with a 32 KiB mark while the client is behind; at a reply batch
/// (32 KiB) 180-200 KiB. The price, measured interleaved against 64 KiB: a 64 KiB echo
/// message takes two hand-offs, 0.70 times the throughput (1.44 times the CPU per request).
/// Netty with handlers on an executor pays the same: each read is a task.
const IN_HIGH_WATER: usize = crate::protocol::REPLY_BATCH;

pub(super) struct Conn {
    pub(super) stream: TcpStream,
    pub(super) id: u64,
    /// `None` while a job is in flight: the session is on the workers' side.
    pub(super) session: Option<Session>,
    /// Bytes read and not yet handed to a worker.
    pub(super) input: Vec<u8>,
    /// The input buffer a job hands back, for the next swap.
    pub(super) spare_in: Vec<u8>,
    /// Reply bytes not yet written.
    pub(super) out: Backlog,
    /// The buffer the next job appends its reply to.
    pub(super) spare_out: Vec<u8>,
    /// Reading stopped at a high-water mark; it resumes explicitly (no new edge will come).
    pub(super) read_paused: bool,
    /// The peer's FIN (or an error) was reported: read on to EOF, never stop at a short read.
    pub(super) peer_closed: bool,
    /// EOF was read: no more reads; close once every input byte is handled and written.
    pub(super) eof: bool,
    /// The protocol asked to close: no more reads or jobs; close once `out` is written.
    pub(super) closing: bool,
    /// The session's request count as its last job brought it back (the session itself may
    /// be away on a worker when the idle sweep looks).
    pub(super) completed: u64,
    pub(super) idle: Idle,
}

impl Conn {
    /// Handles one readiness event; `false` when the connection is finished.
    pub(super) fn on_event(
        &mut self,
        event: &mio::event::Event,
        key: usize,
        scratch: &mut [u8],
        outbox: &mut Vec<Job>,
    ) -> bool {
        if event.is_writable() && self.pending() > 0 && !self.flush() {
            return false;
        }
        // Sticky: a FIN seen once must not be forgotten while reading is paused.
        self.peer_closed |= event.is_read_closed() || event.is_error();
        let readable = event.is_readable() || self.peer_closed;
        self.drive(readable, key, scratch, outbox)
    }

    /// Takes a job back from a worker: writes its reply, keeps the session and the buffers,
    /// and goes on with what accumulated meanwhile. `false` when the connection is finished.
    pub(super) fn on_result(
        &mut self,
        job: Job,
        key: usize,
        scratch: &mut [u8],
        outbox: &mut Vec<Job>,
    ) -> bool {
        self.completed = job.session.completed();
        self.session = Some(job.session);
        if self.pending() == 0 {
            self.spare_in = job.input;
            self.spare_out = self.out.swap_in(job.out);
        } else {
            // The peer is behind: the reply joins the backlog, and no spare buffer is kept for
            // a connection whose replies are not being taken (memory stays bounded).
            self.out.buf().extend_from_slice(&job.out);
            self.spare_out = Vec::new();
        }
        if job.flow == Flow::Close {
            self.closing = true;
            self.input.clear();
        }
        if !self.flush() {
            return false;
        }
        self.drive(false, key, scratch, outbox)
    }

    /// Dispatches a job if none is in flight, reads what is ready (or what a pause left in the
    /// socket), and dispatches again; `false` when the connection is finished.
    pub(super) fn drive(
        &mut self,
        readable: bool,
        key: usize,
        scratch: &mut [u8],
        outbox: &mut Vec<Job>,
    ) -> bool {
        // First what accumulated while a job was away: that may bring `input` back under its
        // high-water mark, so a paused connection reads again now rather than after one more job.
        self.dispatch(key, outbox);
        // Data (or a FIN) that arrives while over the mark stays in the socket: remember to
        // read it once under the mark, since no new edge will come for it.
        if (readable || self.peer_closed) && self.over_high_water() {
            self.read_paused = true;
        }
        let readable = readable || self.peer_closed;
        if !self.eof && !self.closing && (readable || self.read_paused) && !self.over_high_water() {
            self.read_paused = false;
            if !self.read_all(scratch) {
                return false;
            }
        }
        self.dispatch(key, outbox);
        // An ending connection stays until every byte it read is handled and written.
        let idle =
            self.session.is_some() && !self.held() && self.input.is_empty() && self.pending() == 0;
        !((self.eof || self.closing) && idle)
    }

    pub(super) fn pending(&self) -> usize {
        self.out.pending()
    }

    /// Whether the session (at home) holds requests a job left unanswered.
    pub(super) fn held(&self) -> bool {
        self.session.as_ref().is_some_and(Session::unanswered)
    }

    pub(super) fn over_high_water(&self) -> bool {
        self.input.len() >= IN_HIGH_WATER || self.pending() > OUT_HIGH_WATER
    }

    /// Reads into `input` until the socket is drained, a high-water mark is reached, or EOF;
    /// `false` on an error that ends the connection at once. A read takes no more than the
    /// room left under the input mark.
    pub(super) fn read_all(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            if self.over_high_water() {
                self.read_paused = true;
                return true;
            }
            let room = scratch.len().min(IN_HIGH_WATER - self.input.len());
            match self.stream.read(&mut scratch[..room]) {
                Ok(0) => {
                    self.eof = true;
                    return true;
                }
                Ok(n) => {
                    self.input.extend_from_slice(&scratch[..n]);
                    if crate::sys::SHORT_READ_DRAINS && n < room && !self.peer_closed {
                        return true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Hands the accumulated input and the session to the workers, if no job is in flight and
    /// the reply backlog leaves room: when input has accumulated, or the session holds
    /// requests the last job left unanswered (a job's answers are at most a batch). A session
    /// that holds requests gets no new input until it has answered them: the input waits here,
    /// under its mark, so that a client that pipelines without reading cannot grow the
    /// session's buffer.
    pub(super) fn dispatch(&mut self, key: usize, outbox: &mut Vec<Job>) {
        let held = self.held();
        let work = !self.input.is_empty() || held;
        if self.closing || !work || self.pending() > OUT_HIGH_WATER {
            return;
        }
        let Some(session) = self.session.take() else {
            return;
        };
        let input = if held {
            std::mem::take(&mut self.spare_in)
        } else {
            std::mem::replace(&mut self.input, std::mem::take(&mut self.spare_in))
        };
        outbox.push(Job {
            key,
            id: self.id,
            session,
            input,
            out: std::mem::take(&mut self.spare_out),
            flow: Flow::Continue,
        });
    }

    /// Writes as much of the backlog as the socket takes; `false` on a write error.
    pub(super) fn flush(&mut self) -> bool {
        self.out.flush(&mut self.stream)
    }
}
