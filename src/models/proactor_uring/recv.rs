//! The ring's side of receiving: arming a connection's recv (unless it is paused, starved of
//! buffers or done reading), taking a completion, and handing the bytes to the session, echoing
//! straight from the provided buffer when nothing is queued before them. Which recv is armed (a
//! multishot recv capped at [`RECV_CAP`](super::recv_mode::RECV_CAP) bytes per arming, else a
//! single-shot recv) is `recv_mode.rs`.

use io_uring::{cqueue, opcode};

use super::conn::{Mem, RecvState, RESUME_BELOW};
use super::op::{user_data, Op};
use super::worker::Worker;
use crate::models::parts::mio_loop::OUT_HIGH_WATER;
use crate::protocol::Flow;

impl Worker {
    pub(super) fn arm_recv(&mut self, slot: usize) {
        let c = &mut self.conns[slot];
        if c.recv != RecvState::Idle || !c.reading() {
            return;
        }
        if c.paused {
            if c.queued() > RESUME_BELOW || c.session.unanswered() {
                return;
            }
            c.paused = false;
        }
        c.recv = RecvState::Armed;
        c.ops += 1;
        let entry = self
            .recv
            .entry(c.file, self.bufs.group())
            .user_data(user_data(Op::Recv, slot, 0));
        self.push(entry);
    }

    pub(super) fn on_recv(&mut self, slot: usize, res: i32, flags: u32) {
        let c = &mut self.conns[slot];
        if !cqueue::more(flags) {
            c.recv = RecvState::Idle;
            c.ops -= 1;
        }
        if res > 0 {
            let Some(bid) = cqueue::buffer_select(flags) else {
                c.fail();
                return self.progress(slot);
            };
            self.bufs.taken(bid);
            self.on_bytes(slot, bid, res as usize);
        } else if res == 0 {
            c.end_reading();
        } else if res == -libc::ENOBUFS {
            if c.reading() && c.recv != RecvState::Starved {
                c.recv = RecvState::Starved;
                self.starved.push(slot);
            }
        } else if res != -libc::ECANCELED {
            c.fail();
        }
        if !self.conns[slot].recv.armed() {
            self.arm_recv(slot);
        }
        self.progress(slot);
    }

    /// `len` bytes arrived in provided buffer `bid`.
    pub(super) fn on_bytes(&mut self, slot: usize, bid: u16, len: usize) {
        let Worker { conns, bufs, .. } = self;
        let c = &mut conns[slot];
        if !c.reading() {
            bufs.give_back(bid);
            return;
        }
        let data = bufs.slice(bid, len);
        let idle = c.sending.is_none() && c.backlog.is_empty();
        let in_place = if idle {
            c.session.reply_in_place(data)
        } else {
            None
        };
        let flow = match in_place {
            Some(flow) => {
                // The echo goes out straight from the provided buffer, which comes back
                // when the send completed.
                self.start_send(
                    slot,
                    Mem::Ring {
                        bid,
                        len: len as u32,
                    },
                    0,
                );
                flow
            }
            None => {
                let flow = c.session.on_data(data, &mut c.backlog);
                bufs.give_back(bid);
                self.send_backlog(slot);
                flow
            }
        };
        let c = &mut self.conns[slot];
        // Memory stays bounded: over the mark (the send in flight and the backlog behind it: the
        // in-flight buffer is resident until its send completes), or with requests the session
        // held back (their answers were more than a batch), stop receiving until the peer reads
        // its replies.
        let over = c.queued() > OUT_HIGH_WATER || c.session.unanswered();
        c.paused |= over;
        if flow == Flow::Close {
            // Nothing more will be read: end the multishot recv, or it would go on taking
            // (and dropping) whatever the peer sends until the connection closes.
            c.end_reading();
        }
        if (over || !c.reading()) && c.recv == RecvState::Armed {
            c.recv = RecvState::Cancelling;
            c.ops += 1;
            let cancel = opcode::AsyncCancel::new(user_data(Op::Recv, slot, 0))
                .build()
                .user_data(user_data(Op::Cancel, slot, 0));
            self.push(cancel);
        }
    }
}
