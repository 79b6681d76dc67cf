//! The command workloads, client side (`--workload resp` and `memcache`): the request every
//! connection sends, the one answer it must get back, byte for byte, and the preset that makes
//! a real server hold the key the exhibits answer without storing (a `SET` on a connection of
//! its own before the run). The value is the server's: [`crate::protocol::preset::value`] of
//! the payload's size.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use crate::protocol::preset::{value, KEY};
use crate::protocol::Workload;

/// A command workload's request and its answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fixed {
    pub request: Vec<u8>,
    pub reply: Vec<u8>,
    /// What sets the key before the run, and its acknowledgement.
    pub preset: (Vec<u8>, Vec<u8>),
}

/// RESP's array of bulk strings.
fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// The exchange of `workload` with a value of `size` bytes; `None` for echo and HTTP.
/// RESP with a size of 0 is `PING` / `+PONG`.
pub fn fixed(workload: Workload, size: usize) -> Option<Fixed> {
    let v = value(size);
    let key = KEY.as_bytes();
    match workload {
        Workload::Resp => {
            let (request, reply) = if size == 0 {
                (resp(&[b"PING"]), b"+PONG\r\n".to_vec())
            } else {
                let mut reply = format!("${size}\r\n").into_bytes();
                reply.extend_from_slice(&v);
                reply.extend_from_slice(b"\r\n");
                (resp(&[b"GET", key]), reply)
            };
            Some(Fixed {
                request,
                reply,
                preset: (resp(&[b"SET", key, &v]), b"+OK\r\n".to_vec()),
            })
        }
        Workload::Memcache => {
            let mut reply = format!("VALUE {KEY} 0 {size}\r\n").into_bytes();
            reply.extend_from_slice(&v);
            reply.extend_from_slice(b"\r\nEND\r\n");
            let mut set = format!("set {KEY} 0 0 {size}\r\n").into_bytes();
            set.extend_from_slice(&v);
            set.extend_from_slice(b"\r\n");
            Some(Fixed {
                request: format!("get {KEY}\r\n").into_bytes(),
                reply,
                preset: (set, b"STORED\r\n".to_vec()),
            })
        }
        Workload::Echo | Workload::Http => None,
    }
}

/// Sets the key on the server at `target` (a connection of its own, before any of the load's).
pub fn preset(target: SocketAddr, fixed: &Fixed, timeout: Duration) -> Result<(), String> {
    let failed = |e: std::io::Error| format!("cannot set the preset key `{KEY}` on {target}: {e}");
    let mut s = TcpStream::connect_timeout(&target, timeout).map_err(failed)?;
    s.set_read_timeout(Some(timeout)).map_err(failed)?;
    s.write_all(&fixed.preset.0).map_err(failed)?;
    let mut got = vec![0u8; fixed.preset.1.len()];
    s.read_exact(&mut got).map_err(failed)?;
    if got != fixed.preset.1 {
        return Err(format!(
            "the server did not store the preset key `{KEY}` on {target}: it answered {:?} \
             where {:?} was due (is it the protocol --workload names?)",
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&fixed.preset.1)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Cost, Protocol};

    /// The client's request and expected answer, and the server's session, agree.
    #[test]
    fn the_exhibits_session_answers_what_the_client_expects() {
        for (workload, size) in [
            (Workload::Resp, 64),
            (Workload::Resp, 0),
            (Workload::Memcache, 64),
            (Workload::Memcache, 0),
        ] {
            let f = fixed(workload, size).unwrap();
            let protocol = Protocol {
                workload,
                message_size: Some(size),
                cost: Cost::default(),
            };
            let mut session = protocol.session();
            let mut out = Vec::new();
            session.on_data(&f.preset.0, &mut out);
            assert_eq!(out, f.preset.1, "{workload} {size}");
            out.clear();
            session.on_data(&f.request.repeat(3), &mut out);
            assert_eq!(out, f.reply.repeat(3), "{workload} {size}");
            assert_eq!(session.completed(), 4);
        }
        assert!(fixed(Workload::Echo, 64).is_none());
    }
}
