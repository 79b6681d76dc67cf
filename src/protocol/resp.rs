//! RESP (Redis's protocol), server side, for `--workload resp`: `PING` answered `+PONG`, a
//! `GET` of the preset key answered its value, `SET` acknowledged, `QUIT` closes; requests as
//! arrays of bulk strings (what clients send) or inline (`PING\r\n`, what a terminal sends).
//! Anything else gets an `-ERR` reply, as Redis gives; a malformed request gets
//! `-ERR Protocol error` and the connection closes, as Redis does.

use std::io::Write;

use super::preset::{line, Parsed, KEY};

/// The most arguments a request may have.
const MAX_ARGS: usize = 1024;
/// The longest bulk string taken.
const MAX_BULK: usize = 1024 * 1024;

/// Answers the request at the start of `buf` into `out`.
pub(super) fn answer(buf: &[u8], value: &[u8], out: &mut Vec<u8>) -> Parsed {
    let mut args: [&[u8]; 3] = [&[]; 3];
    let (count, used) = match parse(buf, &mut args) {
        Ok(Some(p)) => p,
        Ok(None) => return Parsed::Incomplete,
        Err(why) => {
            out.extend_from_slice(b"-ERR Protocol error: ");
            out.extend_from_slice(why.as_bytes());
            out.extend_from_slice(b"\r\n");
            return Parsed::Answered {
                used: buf.len(),
                close: true,
            };
        }
    };
    if count == 0 {
        // An empty inline line: Redis answers nothing.
        return Parsed::Skipped { used };
    }
    let close = reply(&args[..count.min(3)], count, value, out);
    Parsed::Answered { used, close }
}

/// The commands answered; anything else is unknown.
const COMMANDS: [&str; 4] = ["ping", "get", "set", "quit"];

/// The reply to a command of `count` arguments (the first three in `args`); whether to close.
/// Nothing is allocated but the reply's bytes: this runs once per request.
fn reply(args: &[&[u8]], count: usize, value: &[u8], out: &mut Vec<u8>) -> bool {
    let name = COMMANDS
        .iter()
        .find(|c| args[0].eq_ignore_ascii_case(c.as_bytes()))
        .copied();
    match (name, count) {
        (Some("ping"), 1) => out.extend_from_slice(b"+PONG\r\n"),
        (Some("ping"), 2) => bulk(args[1], out),
        (Some("get"), 2) if args[1] == KEY.as_bytes() => bulk(value, out),
        (Some("get"), 2) => out.extend_from_slice(b"$-1\r\n"),
        (Some("set"), n) if n >= 3 => out.extend_from_slice(b"+OK\r\n"),
        (Some("quit"), _) => {
            out.extend_from_slice(b"+OK\r\n");
            return true;
        }
        (Some(known), _) => {
            out.extend_from_slice(b"-ERR wrong number of arguments for '");
            out.extend_from_slice(known.as_bytes());
            out.extend_from_slice(b"' command\r\n");
        }
        (None, _) => {
            out.extend_from_slice(b"-ERR unknown command '");
            out.extend(args[0].iter().take(64).filter(|b| b.is_ascii_graphic()));
            out.extend_from_slice(b"'\r\n");
        }
    }
    false
}

fn bulk(data: &[u8], out: &mut Vec<u8>) {
    // Formatted straight into the reply: no string per request.
    let _ = write!(out, "${}\r\n", data.len());
    out.extend_from_slice(data);
    out.extend_from_slice(b"\r\n");
}

/// Parses one request: `Ok(Some((arguments, bytes used)))` with the first three arguments in
/// `args`, `Ok(None)` when incomplete, `Err` when malformed.
fn parse<'a>(
    buf: &'a [u8],
    args: &mut [&'a [u8]; 3],
) -> Result<Option<(usize, usize)>, &'static str> {
    if buf.first() != Some(&b'*') {
        let Some((text, used)) = line(buf) else {
            return Ok(None);
        };
        let mut count = 0;
        for word in text
            .split(u8::is_ascii_whitespace)
            .filter(|w| !w.is_empty())
        {
            if count < 3 {
                args[count] = word;
            }
            count += 1;
        }
        return Ok(Some((count, used)));
    }
    let Some((head, mut pos)) = line(buf) else {
        return Ok(None);
    };
    let count = number(&head[1..]).filter(|&n| (1..=MAX_ARGS).contains(&n));
    let count = count.ok_or("invalid multibulk length")?;
    for i in 0..count {
        let Some((len_line, used)) = line(&buf[pos..]) else {
            return Ok(None);
        };
        if len_line.first() != Some(&b'$') {
            return Err("expected '$'");
        }
        let len = number(&len_line[1..])
            .filter(|&n| n <= MAX_BULK)
            .ok_or("invalid bulk length")?;
        pos += used;
        if buf.len() < pos + len + 2 {
            return Ok(None);
        }
        if &buf[pos + len..pos + len + 2] != b"\r\n" {
            return Err("bulk string not ended by CRLF");
        }
        if let Some(arg) = args.get_mut(i) {
            *arg = &buf[pos..pos + len];
        }
        pos += len + 2;
    }
    Ok(Some((count, pos)))
}

/// A decimal number of at most 9 digits.
fn number(text: &[u8]) -> Option<usize> {
    if text.is_empty() || text.len() > 9 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(text).ok()?.parse().ok()
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
    fn commands_are_answered_as_redis_answers_them() {
        let answered = |used, close| Parsed::Answered { used, close };
        let get = b"*2\r\n$3\r\nget\r\n$8\r\niomodels\r\n";
        assert_eq!(
            one(get),
            (answered(get.len(), false), "$3\r\nabc\r\n".into())
        );
        assert_eq!(one(b"PING\r\n"), (answered(6, false), "+PONG\r\n".into()));
        let other = b"*2\r\n$3\r\nGET\r\n$1\r\nx\r\n";
        assert_eq!(one(other), (answered(other.len(), false), "$-1\r\n".into()));
        assert_eq!(
            one(b"SET iomodels abc\r\n"),
            (answered(18, false), "+OK\r\n".into())
        );
        assert_eq!(one(b"QUIT\r\n"), (answered(6, true), "+OK\r\n".into()));
        assert!(one(b"FLUSHALL\r\n")
            .1
            .starts_with("-ERR unknown command 'FLUSHALL'"));
        assert!(one(b"GET\r\n")
            .1
            .starts_with("-ERR wrong number of arguments for 'get'"));
        assert_eq!(one(b"\r\n"), (Parsed::Skipped { used: 2 }, String::new()));
    }

    #[test]
    fn a_request_short_of_its_end_waits_and_a_malformed_one_closes() {
        let get = b"*2\r\n$3\r\nGET\r\n$8\r\niomodels\r\n";
        for cut in 0..get.len() {
            assert_eq!(one(&get[..cut]).0, Parsed::Incomplete, "cut at {cut}");
        }
        for bad in [
            &b"*0\r\n"[..],
            b"*2\r\n+x\r\n",
            b"*1\r\n$99999999999\r\n",
            b"*1\r\n$1\r\nxyz",
        ] {
            let (p, text) = one(bad);
            assert!(matches!(p, Parsed::Answered { close: true, .. }), "{bad:?}");
            assert!(text.starts_with("-ERR Protocol error"), "{text}");
        }
    }
}
