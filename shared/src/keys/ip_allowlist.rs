//! A key's optional IP allowlist: CIDRs, IPv4 and IPv6.

use std::net::IpAddr;
use std::str::FromStr;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCidr {
    #[error("{0:?} is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32")]
    Syntax(String),
    #[error("{given:?} has host bits set; did you mean {network}?")]
    HostBits { given: String, network: String },
    #[error("{0:?} allows every address; leave the allowlist empty to allow all")]
    AllAddresses(String),
}

/// An empty allowlist lets every address through. Entries stored before today's rules, or
/// edited by hand, that no longer parse are kept as `unreadable`: they refuse every request
/// (fail closed) rather than being skipped or failing the request with a 500.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IpAllowlist {
    nets: Vec<IpNet>,
    unreadable: Vec<String>,
}

/// `::ffff:a.b.c.d/n` (n >= 96) is the IPv4 network it maps; sources are matched the same way.
fn unmapped(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96).map_or(net, IpNet::V4),
            None => net,
        },
        _ => net,
    }
}

/// An entry as stored: any CIDR or address that parses. Today's creation rules (no `/0`,
/// no host bits) are not applied again, so a key made before them keeps working as made.
fn parse_stored_entry(text: &str) -> Option<IpNet> {
    IpNet::from_str(text)
        .map(|net| net.trunc())
        .or_else(|_| IpAddr::from_str(text).map(IpNet::from))
        .ok()
        .map(unmapped)
}

fn parse_entry(text: &str) -> Result<IpNet, InvalidCidr> {
    let net = match IpNet::from_str(text) {
        Ok(net) if net.addr() != net.network() => {
            return Err(InvalidCidr::HostBits {
                given: text.to_owned(),
                network: unmapped(net.trunc()).to_string(),
            })
        }
        Ok(net) => net,
        Err(_) => match IpAddr::from_str(text) {
            Ok(addr) => IpNet::from(addr),
            Err(_) => return Err(InvalidCidr::Syntax(text.to_owned())),
        },
    };
    let net = unmapped(net);
    if net.prefix_len() == 0 {
        return Err(InvalidCidr::AllAddresses(text.to_owned()));
    }
    Ok(net)
}

impl IpAllowlist {
    /// The rules for a new allowlist. Accepts CIDRs and bare addresses (a single host). A
    /// CIDR with host bits set is refused (`10.0.0.1/8` is more likely a typo than a wish
    /// to allow all of 10/8), and so is a `/0`, which would allow everyone.
    pub fn parse<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Result<Self, InvalidCidr> {
        let mut list = Self::default();
        for entry in entries {
            let net = parse_entry(entry.as_ref().trim())?;
            if !list.nets.contains(&net) {
                list.nets.push(net);
            }
        }
        Ok(list)
    }

    /// An allowlist as stored. Never fails: an entry that does not parse at all is kept as
    /// unreadable, and the allowlist then permits nobody.
    pub fn from_stored<S: AsRef<str>>(entries: impl IntoIterator<Item = S>) -> Self {
        let mut list = Self::default();
        for entry in entries {
            match parse_stored_entry(entry.as_ref().trim()) {
                Some(net) if !list.nets.contains(&net) => list.nets.push(net),
                Some(_) => {}
                None => list.unreadable.push(entry.as_ref().to_owned()),
            }
        }
        list
    }

    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.unreadable.is_empty()
    }

    /// Whether a stored entry could not be read (every request is then refused).
    pub fn has_unreadable(&self) -> bool {
        !self.unreadable.is_empty()
    }

    /// IPv4-mapped IPv6 sources (`::ffff:203.0.113.7`) are matched as the IPv4 address they are.
    pub fn permits(&self, source: IpAddr) -> bool {
        if self.has_unreadable() {
            return false;
        }
        let source = source.to_canonical();
        self.nets.is_empty() || self.nets.iter().any(|net| net.contains(&source))
    }

    pub fn to_strings(&self) -> Vec<String> {
        self.nets
            .iter()
            .map(IpNet::to_string)
            .chain(self.unreadable.iter().cloned())
            .collect()
    }
}

/// A request's source as the rate counters tell sources apart: an IPv4 address, an IPv6
/// /64 (what one site is usually given: counting each IPv6 address apart would let one
/// host make endless sources), or none (a direct invocation without a request context).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceBucket {
    Unknown,
    V4(std::net::Ipv4Addr),
    V6(Ipv6Net),
}

impl SourceBucket {
    pub fn of(source: Option<IpAddr>) -> Self {
        match source.map(|ip| ip.to_canonical()) {
            None => SourceBucket::Unknown,
            Some(IpAddr::V4(v4)) => SourceBucket::V4(v4),
            Some(IpAddr::V6(v6)) => {
                SourceBucket::V6(Ipv6Net::new(v6, 64).map_or_else(|_| v6.into(), |n| n.trunc()))
            }
        }
    }

    /// How it is written in a counter's name.
    pub fn name(&self) -> String {
        match self {
            SourceBucket::Unknown => "none".to_owned(),
            SourceBucket::V4(v4) => v4.to_string(),
            SourceBucket::V6(net) => net.to_string(),
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        if name == "none" {
            return Some(SourceBucket::Unknown);
        }
        if let Ok(v4) = name.parse() {
            return Some(SourceBucket::V4(v4));
        }
        name.parse::<Ipv6Net>()
            .ok()
            .filter(|net| net.prefix_len() == 64)
            .map(SourceBucket::V6)
    }
}

impl IpAllowlist {
    /// Whether requests counted under `bucket` spend the allowed caller's budget: a permitted
    /// IPv4 address, an IPv6 /64 that an entry overlaps, no source only where there is no
    /// allowlist. A request from a permitted address always falls in such a bucket.
    pub fn permits_bucket(&self, bucket: &SourceBucket) -> bool {
        if self.has_unreadable() {
            return false;
        }
        if self.nets.is_empty() {
            return true;
        }
        match bucket {
            SourceBucket::Unknown => false,
            SourceBucket::V4(v4) => self.permits(IpAddr::V4(*v4)),
            SourceBucket::V6(net) => self.nets.iter().any(|entry| match entry {
                IpNet::V6(entry) => entry.contains(net) || net.contains(entry),
                IpNet::V4(_) => false,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_bucketed_by_address_and_ipv6_by_its_64() {
        for (source, name) in [
            (Some("203.0.113.7"), "203.0.113.7"),
            (Some("::ffff:203.0.113.7"), "203.0.113.7"),
            (Some("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64"),
            (None, "none"),
        ] {
            let bucket = SourceBucket::of(source.map(ip));
            assert_eq!(bucket.name(), name);
            assert_eq!(SourceBucket::parse(name), Some(bucket));
        }
        for bad in ["", "2001:db8::/48", "nobody", "203.0.113.7/32"] {
            assert_eq!(SourceBucket::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_permitted_source_always_falls_in_a_permitted_bucket() {
        let list =
            IpAllowlist::parse(["203.0.113.7", "2001:db8:1:2::5", "2001:db8:9::/48"]).unwrap();
        for allowed in [
            "203.0.113.7",
            "2001:db8:1:2::5",
            "2001:db8:9:4::1",
            "::ffff:203.0.113.7",
        ] {
            assert!(list.permits(ip(allowed)));
            assert!(
                list.permits_bucket(&SourceBucket::of(Some(ip(allowed)))),
                "{allowed}"
            );
        }
        // Refused sources elsewhere are counted apart from the allowed caller.
        for refused in ["203.0.113.8", "2001:db8:1:3::5", "198.51.100.1"] {
            assert!(!list.permits(ip(refused)));
            assert!(
                !list.permits_bucket(&SourceBucket::of(Some(ip(refused)))),
                "{refused}"
            );
        }
        // A neighbour in the allowed address's own /64 shares its bucket (refused, counted).
        assert!(!list.permits(ip("2001:db8:1:2::6")));
        assert!(list.permits_bucket(&SourceBucket::of(Some(ip("2001:db8:1:2::6")))));
        assert!(!list.permits_bucket(&SourceBucket::Unknown));
        assert!(IpAllowlist::default().permits_bucket(&SourceBucket::Unknown));
        assert!(!IpAllowlist::from_stored(["nonsense"])
            .permits_bucket(&SourceBucket::of(Some(ip("203.0.113.7")))));
    }

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
        for everyone in ["0.0.0.0/0", "::/0", "::ffff:0.0.0.0/96"] {
            assert!(
                matches!(
                    IpAllowlist::parse([everyone]),
                    Err(InvalidCidr::AllAddresses(_))
                ),
                "{everyone:?}"
            );
        }
        assert!(matches!(
            IpAllowlist::parse(["2001:db8::1/32"]),
            Err(InvalidCidr::HostBits { .. })
        ));
        let err = IpAllowlist::parse(["10.0.0.1/8"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "\"10.0.0.1/8\" has host bits set; did you mean 10.0.0.0/8?"
        );
    }

    #[test]
    fn mapped_entries_are_the_ipv4_networks_they_map() {
        let list = IpAllowlist::parse(["::ffff:203.0.113.0/120"]).unwrap();
        assert_eq!(list.to_strings(), ["203.0.113.0/24"]);
        assert!(list.permits(ip("203.0.113.40")));
        assert!(list.permits(ip("::ffff:203.0.113.40")));
        assert!(!list.permits(ip("203.0.114.1")));
    }

    #[test]
    fn an_unreadable_stored_entry_fails_closed() {
        let list = IpAllowlist::from_stored(["203.0.113.0/24", "not-a-cidr", "10.0.0.0/33"]);
        assert!(list.has_unreadable());
        assert!(!list.is_empty());
        assert!(
            !list.permits(ip("203.0.113.7")),
            "a readable match must not open it"
        );
        assert!(!list.permits(ip("198.51.100.1")));
        assert_eq!(
            list.to_strings(),
            ["203.0.113.0/24", "not-a-cidr", "10.0.0.0/33"]
        );
        // A /0 stored before creation refused it is read as it was made.
        let old = IpAllowlist::from_stored(["0.0.0.0/0"]);
        assert!(!old.has_unreadable());
        assert!(old.permits(ip("198.51.100.1")));
        let fine = IpAllowlist::from_stored(["203.0.113.0/24"]);
        assert!(!fine.has_unreadable());
        assert!(fine.permits(ip("203.0.113.7")));
    }
}
