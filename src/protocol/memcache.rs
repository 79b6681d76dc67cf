//! memcached's text protocol, server side, for `--workload memcache`: `get`/`gets` of the
//! preset key answered `VALUE ... END`, storage commands (`set`, `add`, `replace`, `append`,
//! `prepend`) acknowledged `STORED` (or nothing with `noreply`), `version`, `quit` closes.
//! Other commands get `ERROR` and a malformed one `CLIENT_ERROR`, as memcached answers; a
//! storage command whose data does not end with `\r\n`, or a line past [`MAX_LINE`], also
//! closes the connection.

use std::io::Write;

use super::preset::{line, Parsed, KEY};

/// The longest command line taken (memcached's keys are at most 250 bytes).
pub const MAX_LINE: usize = 2048;
/// The largest value a storage command may carry (memcached's default item size limit).
const MAX_DATA: usize = 1024 * 1024;

/// Answers the request at the start of `buf` into `out`.
pub(super) fn answer(buf: &[u8], value: &[u8], out: &mut Vec<u8>) -> Parsed {
    let Some((text, used)) = line(buf) else {
        if buf.len() > MAX_LINE {
            return error(b"CLIENT_ERROR line too long\r\n", out);
        }
        return Parsed::Incomplete;
    };
    let mut words = text.split(|b| *b == b' ').filter(|w| !w.is_empty());
    let Some(command) = words.next() else {
        out.extend_from_slice(b"ERROR\r\n");
        return Parsed::Answered { used, close: false };
    };
    match command {
        b"get" | b"gets" => {
            let mut keys = 0;
            for key in words {
                keys += 1;
                if key == KEY.as_bytes() {
                    out.extend_from_slice(b"VALUE ");
                    out.extend_from_slice(KEY.as_bytes());
                    // Formatted straight into the reply: no string per request.
                    let _ = write!(out, " 0 {}", value.len());
                    if command == b"gets" {
                        out.extend_from_slice(b" 1");
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(value);
                    out.extend_from_slice(b"\r\n");
                }
            }
            if keys == 0 {
                out.extend_from_slice(b"ERROR\r\n");
            } else {
                out.extend_from_slice(b"END\r\n");
            }
            Parsed::Answered { used, close: false }
        }
        b"set" | b"add" | b"replace" | b"append" | b"prepend" => store(words, buf, used, out),
        b"version" => {
            out.extend_from_slice(b"VERSION iomodels\r\n");
            Parsed::Answered { used, close: false }
        }
        b"quit" => Parsed::Answered { used, close: true },
        _ => {
            out.extend_from_slice(b"ERROR\r\n");
            Parsed::Answered { used, close: false }
        }
    }
}

/// A storage command: `<key> <flags> <exptime> <bytes> [noreply]`, then the data.
fn store<'a>(
    mut words: impl Iterator<Item = &'a [u8]>,
    buf: &[u8],
    head: usize,
    out: &mut Vec<u8>,
) -> Parsed {
    let fields: Vec<&[u8]> = words.by_ref().take(5).collect();
    let bytes = fields
        .get(3)
        .and_then(|b| std::str::from_utf8(b).ok()?.parse::<usize>().ok());
    let (Some(bytes), 4..=5) = (bytes, fields.len()) else {
        return error(b"CLIENT_ERROR bad command line format\r\n", out);
    };
    if bytes > MAX_DATA {
        return error(b"SERVER_ERROR object too large for cache\r\n", out);
    }
    let end = head + bytes + 2;
    if buf.len() < end {
        return Parsed::Incomplete;
    }
    if &buf[end - 2..end] != b"\r\n" {
        return error(b"CLIENT_ERROR bad data chunk\r\n", out);
    }
    if fields.get(4) != Some(&&b"noreply"[..]) {
        out.extend_from_slice(b"STORED\r\n");
    }
    Parsed::Answered {
        used: end,
        close: false,
    }
}

/// An error reply, and close: what follows cannot be trusted to start a request.
fn error(reply: &[u8], out: &mut Vec<u8>) -> Parsed {
    out.extend_from_slice(reply);
    Parsed::Answered {
        used: usize::MAX,
        close: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(request: &[u8]) -> (Parsed, String) {
        let mut out = Vec::new();
        let p = answer(request, b"abc", &mut out);
        (p, String::from_utf8(out).unwrap())
    }

    #[test]
    fn commands_are_answered_as_memcached_answers_them() {
        let answered = |used, close| Parsed::Answered { used, close };
        assert_eq!(
            one(b"get iomodels\r\n"),
            (
                answered(14, false),
                "VALUE iomodels 0 3\r\nabc\r\nEND\r\n".into()
            )
        );
        assert_eq!(
            one(b"gets other iomodels\r\n").1,
            "VALUE iomodels 0 3 1\r\nabc\r\nEND\r\n"
        );
        assert_eq!(one(b"get nothing\r\n").1, "END\r\n");
        assert_eq!(
            one(b"set iomodels 0 0 3\r\nabc\r\n"),
            (answered(25, false), "STORED\r\n".into())
        );
        assert_eq!(
            one(b"set k 0 0 1 noreply\r\nx\r\n"),
            (answered(24, false), String::new())
        );
        assert_eq!(one(b"version\r\n").1, "VERSION iomodels\r\n");
        assert_eq!(one(b"stats\r\n").1, "ERROR\r\n");
        assert_eq!(one(b"quit\r\n"), (answered(6, true), String::new()));
    }

    #[test]
    fn short_requests_wait_and_bad_ones_close() {
        let set = b"set iomodels 0 0 3\r\nabc\r\n";
        for cut in 0..set.len() {
            assert_eq!(one(&set[..cut]).0, Parsed::Incomplete, "cut at {cut}");
        }
        for bad in [
            &b"set k 0 0 3\r\nabcd\r\n"[..],
            b"set k 0 0\r\n",
            b"set k 0 0 x\r\n",
        ] {
            let (p, text) = one(bad);
            assert!(matches!(p, Parsed::Answered { close: true, .. }), "{bad:?}");
            assert!(text.starts_with("CLIENT_ERROR"), "{text}");
        }
        let (p, text) = one(&vec![b'g'; MAX_LINE + 1]);
        assert!(matches!(p, Parsed::Answered { close: true, .. }));
        assert!(text.starts_with("CLIENT_ERROR line too long"));
    }
}
