//! What the command protocols (`resp.rs`, `memcache.rs`) share below their session
//! (`command.rs`): the preset key and its value, the result of parsing one request, and lines.

/// The preset key.
pub const KEY: &str = "iomodels";
/// The longest request taken (a `SET` with its value included); past it, an error and close.
pub const MAX_REQUEST: usize = 1024 * 1024 + 1024;

/// The preset key's value: `size` letters, `a` to `z` over and over.
pub fn value(size: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Which command protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Resp,
    Memcache,
}

/// What parsing the start of a buffer found.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// The request is not complete yet.
    Incomplete,
    /// One request of `used` bytes, answered into the output; `close` after its reply (then
    /// `used` does not matter: the rest of the input is dropped).
    Answered { used: usize, close: bool },
    /// `used` bytes that are no request (an empty line): no reply, no cost.
    Skipped { used: usize },
}

/// The line at the start of `buf` without its end (`\n`, or `\r\n`) and the bytes it takes
/// with its end; `None` while it has no end.
pub(super) fn line(buf: &[u8]) -> Option<(&[u8], usize)> {
    let end = buf.iter().position(|&b| b == b'\n')?;
    let text = &buf[..end];
    Some((text.strip_suffix(b"\r").unwrap_or(text), end + 1))
}
