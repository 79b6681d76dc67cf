//! Accepting: one multishot accept per ring while the registered file table has room for a
//! whole backlog, single accepts nearer its end, a timed back-off when the kernel is out of
//! descriptors or memory.

use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::time::Instant;

use io_uring::{cqueue, opcode, types};

use super::conn::Conn;
use super::op::{user_data, Op};
use super::worker::Worker;

/// A multishot accept takes every connection queued on the listener at once (up to the
/// backlog) before the loop sees any of them: it runs only while more slots than that are free
/// in the file table. A full table would make the kernel accept a connection and drop it
/// (-ENFILE after the dequeue), so nearer the limit the ring accepts one at a time, and not at
/// all when the table is full, until a connection closes.
const MULTISHOT_MARGIN: usize = crate::models::parts::listener::BACKLOG as usize + 64;

impl Worker {
    /// Free slots in the registered file table.
    pub(super) fn free_files(&self) -> usize {
        self.files.saturating_sub(self.conns.len() + self.strays)
    }

    /// Arms an accept unless one is armed: multishot while the table has room for a whole
    /// backlog, one at a time nearer its end, none when it is full.
    pub(super) fn arm_accept(&mut self) {
        if self.accept_armed || self.retrying || self.stopping {
            return;
        }
        let free = self.free_files();
        if free == 0 {
            return; // re-armed when a connection's Close completes
        }
        let fd = types::Fd(self.listener.as_raw_fd());
        let multishot = free > MULTISHOT_MARGIN;
        let entry = if multishot {
            opcode::AcceptMulti::new(fd)
                .allocate_file_index(true)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .file_index(Some(types::DestinationSlot::auto_target()))
                .build()
        };
        self.accept_armed = true;
        self.accept_multishot = multishot;
        self.accept_cancelling = false;
        self.loop_ops += 1;
        self.push(entry.user_data(user_data(Op::Accept, 0, 0)));
    }

    pub(super) fn on_accept(&mut self, res: i32, flags: u32) {
        if !self.accept_multishot || !cqueue::more(flags) {
            self.accept_armed = false;
            self.loop_ops -= 1;
        }
        if res >= 0 {
            if self.stopping {
                let close = opcode::Close::new(types::Fixed(res as u32))
                    .build()
                    .user_data(user_data(Op::StrayClose, 0, 0));
                self.strays += 1;
                self.loop_ops += 1;
                self.push(close);
            } else {
                let session = self.protocol.session();
                let slot = self
                    .conns
                    .insert(Conn::new(res as u32, session, Instant::now()));
                self.shared.connections.fetch_add(1, Ordering::Relaxed);
                self.arm_recv(slot);
            }
        }
        if self.accept_armed {
            if self.accept_multishot
                && !self.accept_cancelling
                && self.free_files() <= MULTISHOT_MARGIN
            {
                // The table is filling up: end the multishot, accept one at a time.
                self.accept_cancelling = true;
                let cancel = opcode::AsyncCancel::new(user_data(Op::Accept, 0, 0))
                    .build()
                    .user_data(user_data(Op::LoopCancel, 0, 0));
                self.loop_ops += 1;
                self.push(cancel);
            }
            return;
        }
        if self.stopping || self.retrying {
            return;
        }
        if matches!(
            -res,
            libc::ENFILE | libc::EMFILE | libc::ENOMEM | libc::ENOBUFS
        ) {
            // Out of descriptors (the file table) or memory: back off instead of spinning.
            let timer = opcode::Timeout::new(&*self.retry_after as *const types::Timespec)
                .build()
                .user_data(user_data(Op::AcceptRetry, 0, 0));
            self.retrying = true;
            self.loop_ops += 1;
            self.push(timer);
        } else {
            self.arm_accept();
        }
    }
}
