//! Network addresses a plan names for NGINX: the networks trusted to set the group and force
//! headers (`10.0.0.0/8`, `192.168.1.20`, `fd00::/8`), and the DNS resolver NGINX asks for
//! the services' current addresses (`127.0.0.11`, `10.0.0.2:5353`, `[fd00::53]:53`).
//!
//! Both are parsed once here and printed back in the one form NGINX reads, so the schema's
//! format check and the renderer cannot disagree on what a value means.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;

/// An address block in CIDR notation; a bare address is a block of one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    /// `10.0.0.0/8`, `192.168.1.20`, `fd00::/8`. The bits past the prefix must be zero:
    /// `10.0.0.1/8` is refused rather than guessed at (NGINX only warns and drops them).
    pub fn parse(s: &str) -> Result<Network, String> {
        let (addr_text, prefix_text) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr_text.parse().map_err(|_| {
            format!("`{s}` is not an IP address or network; write it like `10.0.0.0/8` or `192.168.1.20`")
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix_text {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(n) if n <= max && p.chars().all(|c| c.is_ascii_digit()) => n,
                _ => {
                    return Err(format!(
                        "`{s}`: the prefix length must be a number from 0 to {max}"
                    ));
                }
            },
        };
        let network = Network { addr, prefix };
        let base = network.base();
        if base != addr {
            return Err(format!(
                "`{s}` has bits set past its /{prefix} prefix; the network is `{base}/{prefix}`"
            ));
        }
        Ok(network)
    }

    /// The first address of the block.
    pub fn first(&self) -> IpAddr {
        self.base()
    }

    /// Whether `ip` lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        ip.is_ipv4() == self.addr.is_ipv4() && Network { addr: ip, ..*self }.base() == self.addr
    }

    fn base(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u32::from(a) & mask).to_be_bytes())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                IpAddr::from((u128::from(a) & mask).to_be_bytes())
            }
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl TryFrom<String> for Network {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Network::parse(&s)
    }
}

impl From<Network> for String {
    fn from(n: Network) -> String {
        n.to_string()
    }
}

/// A DNS server: an IP address and an optional port (`127.0.0.11`, `10.0.0.2:5353`,
/// `[fd00::53]:53`). Only addresses: NGINX would need a resolver to find a named one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Resolver {
    addr: IpAddr,
    port: Option<u16>,
}

impl Resolver {
    /// Docker's embedded DNS server, which every container on a compose network can ask.
    pub(crate) const DOCKER: Resolver = Resolver {
        addr: IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 11)),
        port: None,
    };

    pub fn parse(s: &str) -> Result<Resolver, String> {
        let bad = || {
            format!(
                "`{s}` is not a DNS server address; write an IP address with an optional port, like `127.0.0.11`, `10.0.0.2:5353` or `[fd00::53]:53`"
            )
        };
        if let Ok(addr) = s.parse::<IpAddr>() {
            if addr.is_ipv6() {
                // NGINX reads `fd00::53` as an address, but a port would be ambiguous.
                return Err(format!("{}; put an IPv6 address in brackets", bad()));
            }
            return Ok(Resolver { addr, port: None });
        }
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            let addr: std::net::Ipv6Addr = inner.parse().map_err(|_| bad())?;
            return Ok(Resolver {
                addr: IpAddr::V6(addr),
                port: None,
            });
        }
        let sock: std::net::SocketAddr = s.parse().map_err(|_| bad())?;
        if sock.port() == 0 {
            return Err(format!("`{s}`: the port must be from 1 to 65535"));
        }
        if let std::net::SocketAddr::V6(v6) = sock
            && (v6.flowinfo() != 0 || v6.scope_id() != 0)
        {
            return Err(bad());
        }
        Ok(Resolver {
            addr: sock.ip(),
            port: Some(sock.port()),
        })
    }
}

impl fmt::Display for Resolver {
    /// As NGINX's `resolver` directive reads it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.addr, self.port) {
            (IpAddr::V4(a), None) => write!(f, "{a}"),
            (IpAddr::V4(a), Some(p)) => write!(f, "{a}:{p}"),
            (IpAddr::V6(a), None) => write!(f, "[{a}]"),
            (IpAddr::V6(a), Some(p)) => write!(f, "[{a}]:{p}"),
        }
    }
}

impl TryFrom<String> for Resolver {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Resolver::parse(&s)
    }
}

impl From<Resolver> for String {
    fn from(r: Resolver) -> String {
        r.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_parse_and_print_in_cidr_form() {
        for (written, printed) in [
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.168.1.20", "192.168.1.20/32"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("fd00::/8", "fd00::/8"),
            ("::/0", "::/0"),
            ("::1", "::1/128"),
        ] {
            assert_eq!(Network::parse(written).unwrap().to_string(), printed);
        }
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "10.0.0/8",
            "fd00::1/8",
            "localhost",
            "",
            "10.0.0.0/",
        ] {
            assert!(Network::parse(bad).is_err(), "{bad}");
        }
        let n = Network::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.255.0.1".parse().unwrap()));
        assert!(!n.contains("11.0.0.0".parse().unwrap()));
        assert!(!n.contains("::a00:1".parse().unwrap()));
        assert!(
            Network::parse("::/0")
                .unwrap()
                .contains("fd00::1".parse().unwrap())
        );
        assert!(
            Network::parse("10.0.0.1/8")
                .unwrap_err()
                .contains("`10.0.0.0/8`")
        );
    }

    #[test]
    fn resolvers_parse_and_print_as_nginx_reads_them() {
        for (written, printed) in [
            ("127.0.0.11", "127.0.0.11"),
            ("10.0.0.2:5353", "10.0.0.2:5353"),
            ("[fd00::53]", "[fd00::53]"),
            ("[fd00::53]:53", "[fd00::53]:53"),
        ] {
            assert_eq!(Resolver::parse(written).unwrap().to_string(), printed);
        }
        for bad in ["dns.local", "fd00::53", "10.0.0.2:0", "10.0.0.2:70000", ""] {
            assert!(Resolver::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Resolver::DOCKER.to_string(), "127.0.0.11");
    }
}
