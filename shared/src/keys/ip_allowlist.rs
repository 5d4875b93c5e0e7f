//! A key's optional IP allowlist: CIDRs, IPv4 and IPv6.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::IpNet;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCidr {
    #[error("{0:?} is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32")]
    Syntax(String),
    #[error("{given:?} has host bits set; did you mean {network}?")]
    HostBits { given: String, network: String },
}

/// An empty allowlist lets every address through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist(Vec<IpNet>);

impl IpAllowlist {
    /// Accepts CIDRs and bare addresses (a single host). A CIDR with host bits set is refused:
    /// `10.0.0.1/8` is more likely a typo than a wish to allow all of 10/8.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, InvalidCidr> {
        let mut nets = Vec::new();
        for entry in entries {
            let text = entry.as_ref().trim();
            let net = match IpNet::from_str(text) {
                Ok(net) if net.addr() != net.network() => {
                    return Err(InvalidCidr::HostBits {
                        given: text.to_owned(),
                        network: net.trunc().to_string(),
                    })
                }
                Ok(net) => net,
                Err(_) => match IpAddr::from_str(text) {
                    Ok(addr) => IpNet::from(addr),
                    Err(_) => return Err(InvalidCidr::Syntax(text.to_owned())),
                },
            };
            if !nets.contains(&net) {
                nets.push(net);
            }
        }
        Ok(Self(nets))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// IPv4-mapped IPv6 sources (`::ffff:203.0.113.7`) are matched as the IPv4 address they are.
    pub fn permits(&self, source: IpAddr) -> bool {
        let source = source.to_canonical();
        self.0.is_empty() || self.0.iter().any(|net| net.contains(&source))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.0.iter().map(IpNet::to_string).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn empty_list_permits_everyone() {
        let list = IpAllowlist::parse(Vec::<String>::new()).unwrap();
        assert!(list.is_empty());
        assert!(list.permits(ip("198.51.100.1")));
        assert!(list.permits(ip("2001:db8::1")));
    }

    #[test]
    fn ipv4_cidr_matching_is_exact_at_the_edges() {
        let list = IpAllowlist::parse(["203.0.113.0/24"]).unwrap();
        assert!(list.permits(ip("203.0.113.0")));
        assert!(list.permits(ip("203.0.113.255")));
        assert!(!list.permits(ip("203.0.112.255")));
        assert!(!list.permits(ip("203.0.114.0")));
        assert!(!list.permits(ip("2001:db8::1")));
    }

    #[test]
    fn ipv6_cidr_matching() {
        let list = IpAllowlist::parse(["2001:db8:abcd::/48"]).unwrap();
        assert!(list.permits(ip("2001:db8:abcd:1::5")));
        assert!(!list.permits(ip("2001:db8:abce::1")));
        assert!(!list.permits(ip("203.0.113.1")));
    }

    #[test]
    fn mapped_ipv4_source_matches_ipv4_cidr() {
        let list = IpAllowlist::parse(["203.0.113.0/24"]).unwrap();
        assert!(list.permits(ip("::ffff:203.0.113.9")));
        assert!(!list.permits(ip("::ffff:198.51.100.9")));
    }

    #[test]
    fn bare_addresses_are_single_hosts() {
        let list = IpAllowlist::parse(["198.51.100.7", "2001:db8::7"]).unwrap();
        assert_eq!(list.to_strings(), ["198.51.100.7/32", "2001:db8::7/128"]);
        assert!(list.permits(ip("198.51.100.7")));
        assert!(!list.permits(ip("198.51.100.8")));
        assert!(list.permits(ip("2001:db8::7")));
        assert!(!list.permits(ip("2001:db8::8")));
    }

    #[test]
    fn several_entries_any_match_and_duplicates_collapse() {
        let list = IpAllowlist::parse(["10.0.0.0/8", "192.0.2.0/24", "10.0.0.0/8"]).unwrap();
        assert_eq!(list.to_strings().len(), 2);
        assert!(list.permits(ip("10.200.0.1")));
        assert!(list.permits(ip("192.0.2.200")));
        assert!(!list.permits(ip("172.16.0.1")));
    }

    #[test]
    fn malformed_cidrs_are_refused_with_a_reason() {
        for bad in [
            "",
            "10.0.0.0/33",
            "300.1.1.1",
            "10.0.0/8",
            "2001:db8::/129",
            "abc",
            "10.0.0.0/",
            "/8",
        ] {
            assert!(
                matches!(IpAllowlist::parse([bad]), Err(InvalidCidr::Syntax(_))),
                "{bad:?}"
            );
        }
        let err = IpAllowlist::parse(["10.0.0.1/8"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
    }
}
