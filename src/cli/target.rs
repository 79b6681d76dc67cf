//! `bench load --target`: `HOST:PORT` or an `http://` URL taken apart into the address to
//! connect to, the workload it speaks and, for HTTP, the request to send.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::load::HttpRequest;
use crate::protocol::Workload;
use crate::Error;

/// Where `bench load` sends its load: the address, the workload, and for HTTP the request.
#[derive(Debug)]
pub struct Target {
    pub addr: SocketAddr,
    pub workload: Workload,
    pub http: Option<HttpRequest>,
}

/// `HOST:PORT` (echo, or HTTP for `/plaintext` with `--workload http`) or
/// `http://HOST[:PORT][/PATH]` (HTTP).
pub(super) fn parse_target(
    target: &str,
    workload: Option<Workload>,
    expect_body: Option<&str>,
) -> Result<Target, Error> {
    let bad = |why: String| {
        Error::Usage(format!(
            "cannot use `{target}` as --target: {why} (write it as HOST:PORT, like \
             127.0.0.1:7000, or as http://HOST:PORT/PATH)"
        ))
    };
    let Parts {
        authority,
        host,
        path,
        url,
    } = target_parts(target).map_err(bad)?;
    let workload = match (workload, url) {
        (Some(Workload::Echo), true) => {
            return Err(bad(
                "an http:// target speaks HTTP: drop --workload echo, or give HOST:PORT".into(),
            ))
        }
        (Some(w), _) => w,
        (None, true) => Workload::Http,
        (None, false) => Workload::Echo,
    };
    if expect_body.is_some() && workload != Workload::Http {
        return Err(Error::Usage(
            "--expect-body is for the HTTP workload: add --workload http or use an http:// \
             target"
                .into(),
        ));
    }
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("it resolves to no address".into()))?;
    let http = (workload == Workload::Http).then(|| HttpRequest {
        host,
        path,
        expect_body: expect_body.map(|b| b.as_bytes().to_vec()),
    });
    Ok(Target {
        addr,
        workload,
        http,
    })
}

/// A `--target` taken apart.
struct Parts {
    /// The address to connect to.
    authority: String,
    /// The Host header: the authority as typed.
    host: String,
    path: String,
    /// Whether it was an http:// URL.
    url: bool,
}

/// `HOST:PORT` or `http://...` taken apart, or why not.
fn target_parts(target: &str) -> Result<Parts, String> {
    match target.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => url_parts(rest),
        Some((scheme, _)) => Err(format!(
            "the {scheme}:// scheme is not supported (http:// only; no TLS)"
        )),
        None => Ok(Parts {
            authority: target.to_string(),
            host: target.to_string(),
            path: "/plaintext".to_string(),
            url: false,
        }),
    }
}

/// What follows `http://`: `HOST[:PORT][/PATH][?QUERY]`.
fn url_parts(rest: &str) -> Result<Parts, String> {
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) if rest[i..].starts_with('?') => (&rest[..i], format!("/{}", &rest[i..])),
        Some(i) => (&rest[..i], rest[i..].to_string()),
        None => (rest, "/".to_string()),
    };
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("the path has spaces or control characters (percent-encode them)".into());
    }
    if authority.is_empty() {
        return Err("it names no host".into());
    }
    // A port-less authority gets HTTP's 80 ("[::1]" and "host" alike).
    let has_port = authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.contains(']'));
    let host = authority.to_string();
    let authority = if has_port {
        host.clone()
    } else {
        format!("{authority}:80")
    };
    Ok(Parts {
        authority,
        host,
        path,
        url: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(target: &str) -> (SocketAddr, String, String) {
        let t = parse_target(target, None, None).unwrap();
        assert_eq!(t.workload, Workload::Http, "{target}");
        let r = t.http.unwrap();
        (t.addr, r.host, r.path)
    }

    #[test]
    fn targets_take_wrks_url_forms() {
        let (addr, host, path) = http("http://127.0.0.1:8080/plaintext");
        assert_eq!(addr.to_string(), "127.0.0.1:8080");
        assert_eq!(
            (host.as_str(), path.as_str()),
            ("127.0.0.1:8080", "/plaintext")
        );
        let (_, _, path) = http("http://127.0.0.1:8080");
        assert_eq!(path, "/");
        let (_, host, path) = http("http://127.0.0.1:8080?x=1");
        assert_eq!((host.as_str(), path.as_str()), ("127.0.0.1:8080", "/?x=1"));
        let (addr, host, _) = http("http://127.0.0.1/a");
        assert_eq!((addr.port(), host.as_str()), (80, "127.0.0.1"));
        let (addr, _, _) = http("http://[::1]:9/");
        assert!(addr.is_ipv6());

        let t = parse_target("127.0.0.1:7000", None, None).unwrap();
        assert_eq!(t.workload, Workload::Echo);
        assert!(t.http.is_none());
        let t = parse_target("127.0.0.1:7000", Some(Workload::Http), Some("hi")).unwrap();
        let r = t.http.unwrap();
        assert_eq!(
            (r.path.as_str(), r.expect_body),
            ("/plaintext", Some(b"hi".to_vec()))
        );

        for bad in ["http://127.0.0.1:1/a b", "http:///x", "ftp://h:1/"] {
            assert!(parse_target(bad, None, None).is_err(), "{bad}");
        }
    }
}
