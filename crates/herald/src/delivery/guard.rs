//! The SSRF guard: Herald calls only public addresses, unless `allow_private_targets` is set.
//!
//! A URL is checked when its endpoint is saved and again at every call. At call time the
//! connection goes only to the addresses this guard resolved and checked (it is the HTTP
//! client's resolver), so a DNS answer that changes between the check and the connection
//! (DNS rebinding) cannot slip through. A host is refused if any of its addresses is
//! internal. IP literals (which the client does not resolve) are checked before the call;
//! the URL parser has already read every IPv4 spelling (decimal, hexadecimal, short) into an
//! address.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;

/// Why an address is refused, or `None` when it is public.
pub fn internal_range(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_range(v4),
        IpAddr::V6(v6) => v6_range(v6),
    }
}

fn v4_range(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let range = match (a, b, c) {
        (0, _, _) => "unspecified (0.0.0.0/8)",
        (10, _, _) => "private (10.0.0.0/8)",
        (100, 64..=127, _) => "carrier-grade NAT (100.64.0.0/10)",
        (127, _, _) => "loopback (127.0.0.0/8)",
        (169, 254, _) => "link-local and cloud metadata (169.254.0.0/16)",
        (172, 16..=31, _) => "private (172.16.0.0/12)",
        (192, 0, 0) => "IETF protocol assignments (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation (TEST-NET)",
        (192, 88, 99) => "6to4 relay anycast (192.88.99.0/24)",
        (192, 168, _) => "private (192.168.0.0/16)",
        (198, 18..=19, _) => "benchmarking (198.18.0.0/15)",
        (224..=239, _, _) => "multicast (224.0.0.0/4)",
        (240..=255, _, _) => "reserved and broadcast (240.0.0.0/4)",
        _ => return None,
    };
    Some(range)
}

fn v6_range(ip: Ipv6Addr) -> Option<&'static str> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified (::)");
    }
    if ip.is_loopback() {
        return Some("loopback (::1)");
    }
    // IPv6 spellings of IPv4 addresses are judged by the IPv4 address they carry.
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match segments {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d
        [0, 0, 0, 0, 0, 0xffff, hi, lo] | [0, 0, 0, 0, 0, 0, hi, lo] => {
            return v4_range(embedded(hi, lo));
        }
        // NAT64 64:ff9b::a.b.c.d and 64:ff9b:1::/48
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => return v4_range(embedded(hi, lo)),
        [0x64, 0xff9b, 1, ..] => return Some("local NAT64 (64:ff9b:1::/48)"),
        // 6to4 2002:AABB:CCDD::
        [0x2002, hi, lo, ..] => return v4_range(embedded(hi, lo)),
        _ => {}
    }
    let range = match segments[0] {
        0xfc00..=0xfdff => "unique local (fc00::/7)",
        0xfe80..=0xfebf => "link-local (fe80::/10)",
        0xfec0..=0xfeff => "site-local (fec0::/10)",
        0xff00..=0xffff => "multicast (ff00::/8)",
        0x2001 if segments[1] == 0x0db8 => "documentation (2001:db8::/32)",
        0x2001 if segments[1] < 0x0200 => "IETF protocol assignments and Teredo (2001::/23)",
        0x0100 if segments[1..4] == [0, 0, 0] => "discard (100::/64)",
        _ => return None,
    };
    Some(range)
}

/// Whether a host name means this machine whatever DNS says.
fn is_local_name(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

/// Looks host names up; the system's resolver in production, a scripted one in tests.
pub trait Lookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>>;
}

/// The operating system's resolver.
pub struct SystemLookup;

impl Lookup for SystemLookup {
    fn lookup(&self, host: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
        let host = host.to_owned();
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// The guard: which targets may be called.
#[derive(Clone)]
pub struct Guard {
    allow_private: bool,
    lookup: Arc<dyn Lookup>,
}

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// A name that means this machine whatever DNS says (`localhost`, `*.localhost`).
    #[error("the host {host} is this machine; Herald calls only public addresses")]
    ThisMachine { host: String },
    /// An IP literal in an internal range.
    #[error("{ip}, {range}, is internal; Herald calls only public addresses")]
    Internal { ip: IpAddr, range: &'static str },
    /// A name with an address in an internal range.
    #[error("the host {host} resolves to {ip}, {range}; Herald calls only public addresses")]
    ResolvesInternal {
        host: String,
        ip: IpAddr,
        range: &'static str,
    },
    /// A name that does not resolve (now): not a refusal when an endpoint is saved, a
    /// failed call when it is called.
    #[error("{host}: {reason}")]
    Unresolved { host: String, reason: String },
}

impl Guard {
    /// A guard that asks the system's resolver.
    pub fn new(allow_private: bool) -> Guard {
        Guard {
            allow_private,
            lookup: Arc::new(SystemLookup),
        }
    }

    /// A guard that asks `lookup`, for tests.
    pub fn with_lookup(allow_private: bool, lookup: Arc<dyn Lookup>) -> Guard {
        Guard { allow_private, lookup }
    }

    /// Checks a URL's host without DNS: names of this machine and internal IP literals.
    pub fn check_literal(&self, url: &url::Url) -> Result<(), Refused> {
        if self.allow_private {
            return Ok(());
        }
        let ip: IpAddr = match url.host() {
            Some(url::Host::Domain(name)) if is_local_name(name) => {
                return Err(Refused::ThisMachine { host: name.to_owned() });
            }
            Some(url::Host::Ipv4(ip)) => ip.into(),
            Some(url::Host::Ipv6(ip)) => ip.into(),
            _ => return Ok(()),
        };
        match internal_range(ip) {
            Some(range) => Err(Refused::Internal { ip, range }),
            None => Ok(()),
        }
    }

    /// Resolves `host` and returns its addresses, refusing it if any of them is internal.
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Refused> {
        if !self.allow_private && is_local_name(host) {
            return Err(Refused::ThisMachine { host: host.to_owned() });
        }
        let unresolved = |reason: String| Refused::Unresolved {
            host: host.to_owned(),
            reason,
        };
        let addresses = self.lookup.lookup(host).await.map_err(|e| unresolved(e.to_string()))?;
        if addresses.is_empty() {
            return Err(unresolved("no address".into()));
        }
        if !self.allow_private {
            if let Some((ip, range)) = addresses.iter().find_map(|ip| internal_range(*ip).map(|r| (*ip, r))) {
                return Err(Refused::ResolvesInternal {
                    host: host.to_owned(),
                    ip,
                    range,
                });
            }
        }
        Ok(addresses.into_iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }

    /// Checks a URL when its endpoint is saved: its literal host, and what its name resolves
    /// to now. A name that does not resolve yet is accepted; every call checks again.
    pub async fn check_url(&self, url: &url::Url) -> Result<(), Refused> {
        self.check_literal(url)?;
        if self.allow_private {
            return Ok(());
        }
        match url.host() {
            Some(url::Host::Domain(name)) => match self.resolve(name, 0).await {
                Err(Refused::Unresolved { .. }) => Ok(()),
                other => other.map(|_| ()),
            },
            _ => Ok(()),
        }
    }
}

/// The HTTP client's resolver: every connection goes to addresses the guard checked.
impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addresses = Guard::resolve(&guard, name.as_str(), 0).await?;
            Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    fn refused(ip: &str) -> bool {
        internal_range(ip.parse().unwrap()).is_some()
    }

    #[test]
    fn every_internal_range_is_refused() {
        let internal = [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.255.0.1",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.1",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.0.1",
            "198.18.0.1",
            "198.19.255.255",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.255",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "2001::1",
        ];
        for ip in internal {
            assert!(refused(ip), "{ip} must be refused");
        }
        let public = [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "2a00:1450::1",
        ];
        for ip in public {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn ipv6_spellings_of_ipv4_are_judged_by_their_ipv4() {
        for ip in [
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2002:c0a8:0101::1",
            "64:ff9b:1::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
        for ip in ["::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"] {
            assert!(!refused(ip), "{ip} carries a public address");
        }
    }

    #[test]
    fn every_spelling_of_an_internal_literal_is_refused() {
        let guard = Guard::new(false);
        for raw in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://0177.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://api.localhost/",
            "http://[fe80::1]/",
            "http://169.254.169.254/latest",
        ] {
            let url = url::Url::parse(raw).unwrap();
            assert!(guard.check_literal(&url).is_err(), "{raw} must be refused");
        }
        assert!(
            guard
                .check_literal(&url::Url::parse("https://8.8.8.8/").unwrap())
                .is_ok()
        );
        assert!(
            Guard::new(true)
                .check_literal(&url::Url::parse("http://127.0.0.1/").unwrap())
                .is_ok()
        );
    }

    /// Answers each lookup with the next scripted list of addresses.
    struct Scripted(Mutex<Vec<Vec<IpAddr>>>);

    impl Lookup for Scripted {
        fn lookup(&self, _: &str) -> Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send>> {
            let next = self.0.lock().unwrap().remove(0);
            Box::pin(async move { Ok(next) })
        }
    }

    fn scripted(answers: &[&[&str]]) -> Guard {
        let answers = answers
            .iter()
            .map(|a| a.iter().map(|ip| ip.parse().unwrap()).collect())
            .collect();
        Guard::with_lookup(false, Arc::new(Scripted(Mutex::new(answers))))
    }

    #[tokio::test]
    async fn a_host_is_refused_if_any_of_its_addresses_is_internal() {
        let guard = scripted(&[&["93.184.216.34", "10.0.0.5"]]);
        let err = guard.resolve("mixed.example", 443).await.unwrap_err();
        assert!(
            matches!(err, Refused::ResolvesInternal { ip, .. } if ip.to_string() == "10.0.0.5"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_dns_answer_that_turns_private_after_the_check_is_refused_at_connect() {
        // Public when the endpoint is saved, private when the call connects: the call uses
        // the guard's own resolution, so it never reaches the private address.
        let guard = scripted(&[&["93.184.216.34"], &["127.0.0.1"]]);
        let url = url::Url::parse("https://rebind.example/hook").unwrap();
        assert_eq!(guard.check_url(&url).await, Ok(()));
        let name: reqwest::dns::Name = "rebind.example".parse().unwrap();
        let resolved = reqwest::dns::Resolve::resolve(&guard, name).await;
        assert!(resolved.is_err(), "the second answer is checked before any connection");
    }

    #[tokio::test]
    async fn only_checked_addresses_are_handed_to_the_client() {
        let guard = scripted(&[&["93.184.216.34", "2606:2800:220:1::"]]);
        let name: reqwest::dns::Name = "public.example".parse().unwrap();
        let addresses: Vec<SocketAddr> = reqwest::dns::Resolve::resolve(&guard, name).await.unwrap().collect();
        assert_eq!(addresses.len(), 2);
        assert!(addresses.iter().all(|a| internal_range(a.ip()).is_none()));
    }
}
