//! Sending: one send in flight per connection, from a provided buffer (the echo in place) or
//! from the connection's backlog, zero-copy for large replies under `--uring-zc`; short sends
//! continue where they stopped.

use io_uring::{cqueue, opcode, types};

use super::conn::{Mem, Sending, RESUME_BELOW};
use super::op::{user_data, Op};
use super::options::ZC_MIN_BYTES;
use super::worker::Worker;
use crate::protocol::Flow;

/// An idle connection's spare send buffer is kept up to this capacity, dropped above it.
const SPARE_KEEP: usize = 256 * 1024;

impl Worker {
    /// Starts sending the backlog if no send is in flight.
    pub(super) fn send_backlog(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.sending.is_some() || c.backlog.is_empty() || c.ending() {
            return;
        }
        let next = std::mem::take(&mut c.spare);
        let buf = std::mem::replace(&mut c.backlog, next);
        self.start_send(slot, Mem::Heap(buf), 0);
    }

    pub(super) fn mem_bytes(&self, mem: &Mem) -> (*const u8, usize) {
        match mem {
            Mem::Ring { bid, len } => {
                let s = self.bufs.slice(*bid, *len as usize);
                (s.as_ptr(), s.len())
            }
            Mem::Heap(v) => (v.as_ptr(), v.len()),
        }
    }

    /// Submits the send of `mem` from byte `off` (the connection has none in flight).
    pub(super) fn start_send(&mut self, slot: usize, mem: Mem, off: usize) {
        self.submit_send(slot, mem, off, false);
    }

    /// Submits a send. Unless `park`, a plain send carries MSG_DONTWAIT: io_uring then
    /// completes it inside the call that submits it whatever the socket's room (all of it,
    /// part, or -EAGAIN; `io_sendmsg_prep` turns the flag into REQ_F_NOWAIT), never later,
    /// which `Worker::wait_nr` counts on. After -EAGAIN or a short send the rest goes again
    /// with `park`: without the flag io_uring waits for room itself (an internal poll), and
    /// that send's completion comes whenever the peer reads.
    fn submit_send(&mut self, slot: usize, mem: Mem, off: usize, park: bool) {
        let (ptr, len) = self.mem_bytes(&mem);
        debug_assert!(off < len);
        // SAFETY: `off < len`, inside the memory.
        let ptr = unsafe { ptr.add(off) };
        let remaining = (len - off).min(u32::MAX as usize) as u32;
        let file = types::Fixed(self.conns[slot].file);
        let zero_copy = self.options.zc
            && remaining as usize >= ZC_MIN_BYTES
            && self.held.vacant_key() < u16::MAX as usize - 1;
        let (entry, sending) = if zero_copy {
            let key = self.held.insert(mem);
            let entry = opcode::SendZc::new(file, ptr, remaining)
                .flags(libc::MSG_NOSIGNAL)
                .build()
                .user_data(user_data(Op::Send, slot, key as u16 + 1));
            (entry, Sending::ZeroCopy { key, off })
        } else {
            let wait = if park { 0 } else { libc::MSG_DONTWAIT };
            let entry = opcode::Send::new(file, ptr, remaining)
                .flags(libc::MSG_NOSIGNAL | wait)
                .build()
                .user_data(user_data(Op::Send, slot, 0));
            (
                entry,
                Sending::Own {
                    mem,
                    off,
                    parked: park,
                },
            )
        };
        let c = &mut self.conns[slot];
        debug_assert!(c.sending.is_none(), "two sends in flight on one connection");
        c.sending = Some(sending);
        c.in_flight = len;
        c.ops += 1;
        self.sent.push(slot);
        self.push(entry);
    }

    pub(super) fn on_send(&mut self, slot: usize, res: i32, flags: u32, extra: u16) {
        let sending = {
            let c = &mut self.conns[slot];
            c.ops -= 1;
            c.in_flight = 0;
            c.sending.take()
        };
        let Some(sending) = sending else {
            debug_assert!(
                false,
                "a send completed on a connection with none in flight"
            );
            return;
        };
        match sending {
            Sending::Own { mem, off, parked } => {
                let (_, len) = self.mem_bytes(&mem);
                let sent = off + res.max(0) as usize;
                if res == -libc::EAGAIN && !parked {
                    // The socket had no room: the send waits for it in the kernel.
                    self.submit_send(slot, mem, off, true);
                } else if res < 0 {
                    self.release(mem, None);
                    self.conns[slot].fail();
                } else if sent < len {
                    // A short send: the socket filled, so the rest goes next parked (a send
                    // without MSG_DONTWAIT would only come back with -EAGAIN), before anything
                    // queued behind it.
                    self.submit_send(slot, mem, sent, true);
                } else {
                    self.release(mem, Some(slot));
                }
            }
            Sending::ZeroCopy { key, off } => {
                let (ptr, len) = self.mem_bytes(&self.held[key]);
                let sent = off + res.max(0) as usize;
                let c = &mut self.conns[slot];
                if res < 0 {
                    c.fail();
                } else if sent < len {
                    // A short zero-copy send: its memory waits for the notification, so the
                    // rest is copied in front of the backlog.
                    // SAFETY: `sent < len`, inside the held memory.
                    let rest = unsafe { std::slice::from_raw_parts(ptr.add(sent), len - sent) };
                    let mut front = Vec::with_capacity(rest.len() + c.backlog.len());
                    front.extend_from_slice(rest);
                    front.extend_from_slice(&c.backlog);
                    c.backlog = front;
                }
                debug_assert_eq!(extra as usize, key + 1);
                if !cqueue::more(flags) {
                    // No notification follows (the send failed before using the memory).
                    self.release_held(extra);
                }
            }
        }
        self.answer_held(slot);
        self.send_backlog(slot);
        if !self.conns[slot].recv.armed() {
            self.arm_recv(slot);
        }
        self.progress(slot);
    }

    /// Answers the requests the session held back, while the backlog is under the point where
    /// a paused connection resumes: their replies join the backlog before anything received
    /// later.
    pub(super) fn answer_held(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        while c.session.unanswered() && c.queued() <= RESUME_BELOW && !c.ending() {
            if c.session.on_data(&[], &mut c.backlog) == Flow::Close {
                // Its recv was cancelled when the requests were held: nothing more is read.
                c.end_reading();
            }
        }
    }

    /// Memory a send finished with goes back: a provided buffer to the ring, a heap buffer to
    /// the connection's spare (when `slot` still wants one).
    pub(super) fn release(&mut self, mem: Mem, slot: Option<usize>) {
        match mem {
            Mem::Ring { bid, .. } => self.bufs.give_back(bid),
            Mem::Heap(mut v) => {
                if let Some(c) = slot.and_then(|s| self.conns.get_mut(s)) {
                    if c.spare.capacity() == 0 && v.capacity() <= SPARE_KEEP {
                        v.clear();
                        c.spare = v;
                    }
                }
            }
        }
    }

    pub(super) fn release_held(&mut self, extra: u16) {
        let key = (extra as usize).wrapping_sub(1);
        if let Some(mem) = self.held.try_remove(key) {
            self.release(mem, None);
        }
    }
}
