//! Where a value goes: one canonical spelling per host.
//!
//! Policy rules, approval grants and audit records compare destinations as
//! text, so every spelling of one host must become the same text, and a
//! spelling that different clients read as different hosts must be refused.
//!
//! - Host names are ASCII lower-cased, one trailing dot removed.
//! - IPv6 literals, bracketed or not, become RFC 5952 text without brackets
//!   (`[0:0::1]` and `0000:…:0001` are `::1`); an IPv4-mapped address
//!   (`::ffff:169.254.169.254`, `::ffff:a9fe:a9fe`) becomes the IPv4
//!   address it routes to.
//! - IPv4 is accepted only as four decimal octets without leading zeros.
//!   The numeric forms `inet_aton` and URL parsers also read as IPv4 —
//!   `2852039166`, `169.254.43518`, `0xa9.0xfe.0xa9.0xfe`, octal
//!   `0251.0376.0251.0376`, a leading zero — are refused with
//!   [`RequestError::AmbiguousAddress`]: a client would connect to
//!   169.254.169.254 while a rule naming that address saw another host.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use super::RequestError;

/// Longest accepted destination host, in bytes (DNS limit).
const MAX_HOST_LEN: usize = 253;

/// The host a value will be sent to (`api.github.com`, `10.0.0.7`, `::1`),
/// in its one canonical spelling. Policy rules and approval grants bind a
/// secret to destination hosts and compare them as text, so every spelling
/// of a host becomes the same text, and a spelling clients read as another
/// host is refused:
///
/// - host names are ASCII lower-cased, one trailing dot removed;
/// - IPv6 literals, bracketed or not, become RFC 5952 text without brackets
///   (`[0:0::1]` and `0000:…:0001` are `::1`); an IPv4-mapped address
///   (`::ffff:169.254.169.254`, `::ffff:a9fe:a9fe`) becomes the IPv4
///   address it routes to;
/// - IPv4 is accepted only as four decimal octets without leading zeros;
///   the numeric forms `inet_aton` and URL parsers also read as IPv4
///   (`2852039166`, `169.254.43518`, `0xa9.0xfe.0xa9.0xfe`, octal
///   `0251.0376.0251.0376`) are refused with
///   [`RequestError::AmbiguousAddress`].
///
/// Deserializing applies the same checks and canonicalisation as
/// [`Destination::host`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Destination(String);

impl Destination {
    /// Checks a host name or IP address and turns it into its canonical
    /// spelling: host names ASCII lower-cased with one trailing dot removed,
    /// IPv6 in RFC 5952 form without brackets, IPv4-mapped IPv6 as IPv4.
    ///
    /// ```
    /// use tyrum_secrets_core::Destination;
    /// assert_eq!(Destination::host("API.GitHub.com.")?.as_str(), "api.github.com");
    /// assert_eq!(Destination::host("[0:0::1]")?.as_str(), "::1");
    /// assert_eq!(Destination::host("::ffff:a9fe:a9fe")?.as_str(), "169.254.169.254");
    /// assert!(Destination::host("2852039166").is_err()); // 169.254.169.254 to inet_aton
    /// # Ok::<(), tyrum_secrets_core::RequestError>(())
    /// ```
    ///
    /// # Errors
    /// [`RequestError::InvalidHost`] when it is empty, longer than 253
    /// bytes, holds a character outside `[A-Za-z0-9.-_:[]]`, has an empty
    /// label, or uses `:` or brackets outside an IPv6 address (a port);
    /// [`RequestError::AmbiguousAddress`] for a numeric IPv4 form other
    /// than four decimal octets.
    pub fn host(host: impl Into<String>) -> Result<Self, RequestError> {
        canonical_host(host.into()).map(Self)
    }

    /// The destination host of a URL: scheme, user info, port, path, query
    /// and fragment are dropped, and the host is checked and canonicalised
    /// as by [`Destination::host`].
    ///
    /// ```
    /// use tyrum_secrets_core::Destination;
    /// let d = Destination::from_url("https://user@API.GitHub.com:443/repos?x=1")?;
    /// assert_eq!(d.as_str(), "api.github.com");
    /// assert_eq!(Destination::from_url("http://[::ffff:169.254.169.254]/")?.as_str(), "169.254.169.254");
    /// assert!(Destination::from_url("http://0xa9fea9fe/latest").is_err());
    /// # Ok::<(), tyrum_secrets_core::RequestError>(())
    /// ```
    ///
    /// URLs that clients disagree about are refused rather than guessed at:
    /// a backslash (WHATWG parsers read `http://a\@b/` as host `a`, others
    /// as `b`), more than one `@`, a percent-encoded host, whitespace or
    /// control characters, a port that is not a number up to 65535.
    /// International host names must be given in their `xn--` form.
    ///
    /// # Errors
    /// [`RequestError::InvalidUrl`] when the text is not an absolute URL
    /// with a host (`scheme://host...`) or is ambiguous as above; otherwise
    /// as [`Destination::host`]. The error never repeats the URL, which may
    /// carry a password.
    pub fn from_url(url: &str) -> Result<Self, RequestError> {
        let invalid = |reason| Err(RequestError::InvalidUrl { reason });
        if url
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '\\')
        {
            return invalid("it holds whitespace, a control character or a backslash");
        }
        let Some((scheme, rest)) = url.split_once("://") else {
            return invalid("it is not an absolute URL of the form scheme://host/...");
        };
        let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if !scheme_ok {
            return invalid("its scheme is not letters, digits, '+', '-' or '.'");
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = match authority.split('@').collect::<Vec<_>>().as_slice() {
            [host_port] | [_, host_port] => *host_port,
            _ => return invalid("it has more than one '@' before the path"),
        };
        if host_port.contains('%') {
            return invalid("its host is percent-encoded");
        }
        let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
            let Some((inside, after)) = bracketed.split_once(']') else {
                return invalid("its IPv6 address has no closing ']'");
            };
            match after {
                "" => (inside, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (inside, Some(port)),
                    None => return invalid("text follows its IPv6 address"),
                },
            }
        } else {
            match host_port.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (host_port, None),
            }
        };
        if let Some(port) = port {
            let digits =
                !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
            if !digits || port.parse::<u32>().map_or(true, |p| p > 65535) {
                return invalid("its port is not a number from 0 to 65535");
            }
        }
        if host.is_empty() {
            return invalid("it has no host");
        }
        Self::host(host)
    }

    /// The host as text, in its canonical spelling.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Destination {
    type Error = RequestError;

    fn try_from(host: String) -> Result<Self, Self::Error> {
        Self::host(host)
    }
}

impl From<Destination> for String {
    fn from(destination: Destination) -> Self {
        destination.0
    }
}

/// The canonical spelling of `host`, or why it has none.
pub(crate) fn canonical_host(host: String) -> Result<String, RequestError> {
    let invalid = |reason| Err(RequestError::InvalidHost { reason });
    let mut host = host.to_ascii_lowercase();
    if host.ends_with('.') {
        host.pop();
    }
    if host.is_empty() || host.len() > MAX_HOST_LEN {
        return invalid("it must be 1 to 253 bytes");
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || b"-._:[]".contains(&b);
    if !host.bytes().all(allowed) {
        return invalid("only letters, digits and - . _ : [ ] are allowed");
    }
    if host.contains([':', '[', ']']) {
        // A port ("evil.example:443") would be a second spelling of the
        // host; only an IPv6 address may hold ':' or brackets.
        let bare = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&host);
        return match bare.parse::<Ipv6Addr>() {
            Ok(v6) => Ok(canonical_ip(IpAddr::V6(v6))),
            Err(_) => invalid(
                "':' and brackets are only allowed in an IPv6 address; give the host without a port",
            ),
        };
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.iter().any(|l| l.is_empty()) {
        return invalid("a host name has no empty labels");
    }
    // URL parsers (WHATWG) and inet_aton read a host whose last label is a
    // number as an IPv4 address, in any of several forms. Only the
    // dotted-quad decimal form has one spelling.
    if labels.last().is_some_and(|l| looks_numeric(l)) {
        return match dotted_quad(&labels) {
            Some(v4) => Ok(canonical_ip(IpAddr::V4(v4))),
            None => Err(RequestError::AmbiguousAddress),
        };
    }
    Ok(host)
}

/// RFC 5952 text for IPv6, with IPv4-mapped addresses as the IPv4 address.
fn canonical_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6.to_string(),
        },
    }
}

/// Whether a label is a number to an IPv4 parser: decimal digits, or `0x`
/// followed by hex digits (or nothing).
fn looks_numeric(label: &str) -> bool {
    match label.strip_prefix("0x") {
        Some(hex) => hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => label.bytes().all(|b| b.is_ascii_digit()),
    }
}

/// Four decimal octets, 0 to 255, without leading zeros.
fn dotted_quad(labels: &[&str]) -> Option<Ipv4Addr> {
    let [a, b, c, d] = labels else {
        return None;
    };
    let octet = |label: &str| -> Option<u8> {
        let decimal = !label.is_empty()
            && label.len() <= 3
            && label.bytes().all(|b| b.is_ascii_digit())
            && (label == "0" || !label.starts_with('0'));
        if decimal { label.parse().ok() } else { None }
    };
    Some(Ipv4Addr::new(octet(a)?, octet(b)?, octet(c)?, octet(d)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destination_is_normalized_and_checked() {
        assert_eq!(
            Destination::host("API.GitHub.com.").unwrap().as_str(),
            "api.github.com"
        );
        assert!(Destination::host("").is_err());
        assert!(Destination::host("a b").is_err());
        assert!(Destination::host("https://x").is_err());
    }

    #[test]
    fn destination_has_one_spelling_per_host() {
        // Another spelling of a host would not match a deny rule naming it.
        for bad in [
            "evil.example:443",
            "evil.example..",
            ".evil.example",
            "evil..example",
            "[::1]:443",
            "[evil.example]",
            "::g",
            "[::1",
            "fe80::1%eth0",
        ] {
            assert!(Destination::host(bad).is_err(), "{bad}");
        }
        for (spelling, canonical) in [
            ("evil.example", "evil.example"),
            ("evil.example.", "evil.example"),
            ("127.0.0.1", "127.0.0.1"),
            ("0.0.0.0", "0.0.0.0"),
            ("::1", "::1"),
            ("[::1]", "::1"),
            ("0::1", "::1"),
            ("0:0:0:0:0:0:0:1", "::1"),
            ("0000:0000:0000:0000:0000:0000:0000:0001", "::1"),
            ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"),
            ("[2001:db8::0:1]", "2001:db8::1"),
            ("::ffff:169.254.169.254", "169.254.169.254"),
            ("::FFFF:A9FE:A9FE", "169.254.169.254"),
            ("[::ffff:127.0.0.1]", "127.0.0.1"),
            // Not numeric in the last label: ordinary host names.
            ("0x.example", "0x.example"),
            ("1.2.3.example", "1.2.3.example"),
            ("123abc", "123abc"),
        ] {
            assert_eq!(
                Destination::host(spelling).map(|d| d.0),
                Ok(canonical.to_owned()),
                "{spelling}"
            );
        }
    }

    #[test]
    fn ambiguous_numeric_ipv4_forms_are_refused() {
        for bad in [
            "2852039166",
            "169.254.43518",
            "169.16689662",
            "0xa9.0xfe.0xa9.0xfe",
            "0xA9FEA9FE",
            "0xa9.254.169.254",
            "0251.0376.0251.0376",
            "169.254.169.0254",
            "01.2.3.4",
            "1.2.3.256",
            "1.2.3.4.5",
            "127.1",
            "0x",
            "example.0x1f",
            "example.123",
        ] {
            assert_eq!(
                Destination::host(bad),
                Err(RequestError::AmbiguousAddress),
                "{bad}"
            );
        }
    }

    #[test]
    fn url_host_is_extracted_and_canonicalised() {
        for (url, host) in [
            ("https://api.github.com", "api.github.com"),
            ("https://API.GitHub.com./repos/x?y=1#z", "api.github.com"),
            ("https://user:pass@api.github.com:8443/", "api.github.com"),
            ("http://api.github.com?x=@evil.example", "api.github.com"),
            ("http://api.github.com#@evil.example", "api.github.com"),
            ("http://[::1]:8080/", "::1"),
            ("http://[0:0::1]", "::1"),
            ("http://[::ffff:169.254.169.254]/latest", "169.254.169.254"),
            ("http://169.254.169.254/latest/meta-data", "169.254.169.254"),
            ("ws+unix://socket.example", "socket.example"),
        ] {
            assert_eq!(
                Destination::from_url(url).map(|d| d.0),
                Ok(host.to_owned()),
                "{url}"
            );
        }
    }

    #[test]
    fn ambiguous_urls_are_refused() {
        for bad in [
            "api.github.com",
            "//api.github.com/",
            "https://",
            "https://:443/",
            "https://user@/",
            "1http://x",
            "http://evil.example\\@api.github.com/",
            "http://a@b@api.github.com/",
            "http://api%2egithub.com/",
            "http://api.github.com:99999/",
            "http://api.github.com:x/",
            "http://api.github.com:/",
            "http://[::1]x/",
            "http://[::1/",
            "http://api.github.com /",
            "http://api.github.com\n/",
            "http://2852039166/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "http://169.254.43518/",
            "http://0251.0376.0251.0376/",
            "http://bücher.example/",
        ] {
            assert!(Destination::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn url_errors_never_repeat_the_url() {
        let url = "http://user:CANARY-pass-77@0xa9fea9fe/";
        let err = Destination::from_url(url).unwrap_err().to_string();
        assert!(!err.contains("CANARY"), "{err}");
        let err = Destination::from_url("http://a@CANARY-pass-77@x/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("CANARY"), "{err}");
    }

    #[test]
    fn deserialized_destination_is_canonical_and_checked() {
        let d: Destination = serde_json::from_str(r#""[0::1]""#).unwrap();
        assert_eq!(d.as_str(), "::1");
        assert_eq!(serde_json::to_string(&d).unwrap(), r#""::1""#);
        assert!(serde_json::from_str::<Destination>(r#""2852039166""#).is_err());
        assert!(serde_json::from_str::<Destination>(r#""a b""#).is_err());
    }
}
