//! Where a webhook may be sent: `https` URLs whose host resolves only to public addresses.
//! The same guard runs when an endpoint is saved (a clear 400) and when each delivery
//! connects (the address actually dialled, after DNS: a name that later resolves
//! elsewhere is caught there). The local stack alone allows `http` and private targets
//! (`WEBHOOK_ALLOW_PRIVATE_TARGETS=true`), so a receiver on localhost works.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use url::{Host, Url};

pub const ALLOW_PRIVATE_TARGETS_ENV: &str = "WEBHOOK_ALLOW_PRIVATE_TARGETS";
pub const MAX_URL_CHARS: usize = 2048;
/// How long a name may take to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a target is refused, in words an integrator can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    #[error("{0}")]
    Malformed(String),
    #[error("The URL's host {host} could not be resolved.")]
    Unresolvable { host: String },
    #[error(
        "The URL's host {host} resolves to {ip}, {why}: webhooks go to public addresses only."
    )]
    Forbidden {
        host: String,
        ip: IpAddr,
        why: &'static str,
    },
}

/// Why an address is not a public one, or `None` for a public address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    let why = if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() || a == 0 {
        "an unspecified address"
    } else if ip.is_private() {
        "a private address"
    } else if ip.is_link_local() {
        // 169.254.169.254 is the metadata service of AWS, GCP and Azure.
        "a link-local or cloud metadata address"
    } else if a == 100 && (64..128).contains(&b) {
        // Carrier-grade NAT; 100.100.100.200 is Alibaba Cloud's metadata service.
        "a shared (carrier-grade NAT) or cloud metadata address"
    } else if a == 192 && b == 0 && c == 0 {
        "an IETF protocol address"
    } else if a == 198 && (b == 18 || b == 19) {
        "a benchmarking address"
    } else if ip.is_documentation() {
        "a documentation address"
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        "a multicast, broadcast or reserved address"
    } else {
        return None;
    };
    Some(why)
}

/// IPv6 targets are global unicast (`2000::/3`) only, and not those parts of it that carry an
/// IPv4 address or are set aside: a range that embeds IPv4 (NAT64 `64:ff9b::/96` and its
/// local-use `64:ff9b:1::/48`, 6to4 `2002::/16`, Teredo `2001::/32`, the deprecated
/// IPv4-compatible `::/96`) could reach an internal IPv4 host through a translator, so it
/// is refused whole, whatever address it embeds. IPv4-mapped addresses (`::ffff:a.b.c.d`)
/// are the IPv4 address itself and are judged as it is.
fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let segments = ip.segments();
    let why = if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_unspecified() {
        "an unspecified address"
    } else if segments[0] & 0xfe00 == 0xfc00 {
        // fd00:ec2::254 is the AWS metadata service over IPv6.
        "a unique-local or cloud metadata address"
    } else if segments[0] & 0xffc0 == 0xfe80 || segments[0] & 0xffc0 == 0xfec0 {
        "a link-local address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if segments[0] == 0x64 && segments[1] == 0xff9b {
        "a NAT64 address (it carries an IPv4 address)"
    } else if segments[..6] == [0; 6] {
        "an IPv4-compatible address (it carries an IPv4 address)"
    } else if segments[0] & 0xe000 != 0x2000 {
        "an address outside IPv6's global unicast range"
    } else if segments[0] == 0x2001 && segments[1] == 0 {
        "a Teredo address (it carries an IPv4 address)"
    } else if segments[0] == 0x2002 {
        "a 6to4 address (it carries an IPv4 address)"
    } else if segments[0] == 0x2001 && segments[1] < 0x200 {
        // 2001::/23: IETF protocol assignments (ORCHID, benchmarking, AMT, …).
        "an IETF protocol address"
    } else if (segments[0] == 0x2001 && segments[1] == 0x0db8) || segments[0] & 0xfff0 == 0x3ff0 {
        "a documentation address"
    } else {
        return None;
    };
    Some(why)
}

/// The port policy: 443 (the default for https), or any port from 1024 up. The other
/// well-known ports belong to other protocols (mail, SSH, DNS, …): a webhook must not be
/// turned into a way to knock on a public mail or SSH server from our addresses.
pub fn forbidden_port(port: u16) -> bool {
    port != 443 && port < 1024
}

/// A lookup under way: the addresses a name has, at a port.
pub type Resolution<'a> = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::io::Result<Vec<SocketAddr>>> + Send + 'a>,
>;

/// Looks names up. The system's resolver in a deployment; tests give fixed answers.
pub trait Resolve: Send + Sync + std::fmt::Debug {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolution<'a>;
}

#[derive(Debug, Default)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolution<'a> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// Fixed answers (names in lower case); names it lacks do not resolve.
#[derive(Debug, Default, Clone)]
pub struct FixedResolver(pub HashMap<String, Vec<IpAddr>>);

impl Resolve for FixedResolver {
    fn resolve<'a>(&'a self, host: &'a str, port: u16) -> Resolution<'a> {
        let found = self.0.get(&host.to_ascii_lowercase()).cloned();
        Box::pin(async move {
            found
                .map(|ips| {
                    ips.into_iter()
                        .map(|ip| SocketAddr::new(ip, port))
                        .collect()
                })
                .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such host"))
        })
    }
}

/// The policy and the resolver, together.
#[derive(Debug, Clone)]
pub struct TargetGuard {
    pub allow_private: bool,
    pub resolver: Arc<dyn Resolve>,
}

impl Default for TargetGuard {
    fn default() -> Self {
        Self {
            allow_private: false,
            resolver: Arc::new(SystemResolver),
        }
    }
}

impl TargetGuard {
    pub fn from_env() -> Self {
        Self {
            allow_private: std::env::var(ALLOW_PRIVATE_TARGETS_ENV).as_deref() == Ok("true"),
            ..Self::default()
        }
    }

    /// The URL's form: absolute, `https` (or `http` where private targets are allowed),
    /// a host, no credentials, no fragment, at most 2048 characters.
    pub fn parse_url(&self, text: &str) -> Result<Url, TargetError> {
        let bad = |why: &str| TargetError::Malformed(why.to_owned());
        if text.is_empty() || text.chars().count() > MAX_URL_CHARS {
            return Err(bad("url must be 1-2048 characters."));
        }
        if text.trim() != text || text.chars().any(char::is_control) {
            return Err(bad("url must not hold spaces or control characters."));
        }
        let url = Url::parse(text).map_err(|e| {
            TargetError::Malformed(format!(
                "url is not an absolute URL ({e}); give one such as https://example.com/hooks."
            ))
        })?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_private => {}
            _ => return Err(bad("url must be an https URL.")),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "url must not carry credentials; verify deliveries by their signature instead.",
            ));
        }
        if url.fragment().is_some() {
            return Err(bad("url must not have a #fragment."));
        }
        if url.host().is_none() {
            return Err(bad("url needs a host."));
        }
        if url.port().is_some_and(forbidden_port) {
            return Err(bad(
                "url's port must be 443 or from 1024 up: the other well-known ports belong to \
                 other protocols.",
            ));
        }
        Ok(url)
    }

    /// The addresses a delivery to `url` may connect to: every address the host resolves
    /// to, when none of them is forbidden (a name with one private address among public
    /// ones is refused whole).
    pub async fn addresses(&self, url: &Url) -> Result<Vec<SocketAddr>, TargetError> {
        let port = url.port_or_known_default().unwrap_or(443);
        let (name, addrs) = match url.host() {
            Some(Host::Ipv4(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(Host::Ipv6(ip)) => (ip.to_string(), vec![SocketAddr::new(ip.into(), port)]),
            Some(Host::Domain(name)) => {
                let found =
                    tokio::time::timeout(RESOLVE_TIMEOUT, self.resolver.resolve(name, port))
                        .await
                        .ok()
                        .and_then(Result::ok)
                        .filter(|addrs| !addrs.is_empty())
                        .ok_or_else(|| TargetError::Unresolvable {
                            host: name.to_owned(),
                        })?;
                (name.to_owned(), found)
            }
            None => return Err(TargetError::Malformed("url needs a host.".into())),
        };
        self.permit(&name, addrs)
    }

    /// `addrs` if every one may be dialled.
    pub fn permit(
        &self,
        host: &str,
        addrs: Vec<SocketAddr>,
    ) -> Result<Vec<SocketAddr>, TargetError> {
        if !self.allow_private {
            for addr in &addrs {
                if let Some(why) = forbidden_reason(addr.ip()) {
                    return Err(TargetError::Forbidden {
                        host: host.to_owned(),
                        ip: addr.ip(),
                        why,
                    });
                }
            }
        }
        Ok(addrs)
    }

    /// The URL checked as an endpoint is saved: its form, then where it resolves.
    pub async fn check(&self, text: &str) -> Result<Url, TargetError> {
        let url = self.parse_url(text)?;
        self.addresses(&url).await?;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for text in [
            "127.0.0.1",
            "127.8.9.10",
            "0.0.0.0",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.100.100.200",
            "100.64.0.1",
            "192.0.0.192",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "::127.0.0.1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe::1",
            // Ranges that carry an IPv4 address are refused whole, even a public one's.
            "64:ff9b::808:808",
            "64:ff9b:1::a00:1",
            "64:ff9b:1:ffff::1",
            "2001::1",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2002:0808:0808::1",
            "::808:808",
            // Outside global unicast, or set aside within it.
            "100::1",
            "4000::1",
            "2001:2::1",
            "2001:20::1",
            "3fff::1",
        ] {
            assert!(
                forbidden_reason(ip(text)).is_some(),
                "{text} must be refused"
            );
        }
        for text in [
            "93.184.215.14",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
        ] {
            assert_eq!(forbidden_reason(ip(text)), None, "{text} is public");
        }
    }

    #[test]
    fn urls_must_be_https_with_a_host_and_no_credentials() {
        let guard = TargetGuard::default();
        assert!(guard.parse_url("https://hooks.example.com/in?x=1").is_ok());
        // The port policy: 443 or from 1024 up.
        for port in [443, 1024, 8443, 65535] {
            assert!(guard
                .parse_url(&format!("https://hooks.example.com:{port}/in"))
                .is_ok());
        }
        for bad in [
            "http://hooks.example.com/in",
            "ftp://hooks.example.com/",
            "hooks.example.com/in",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/#frag",
            " https://hooks.example.com/",
            "",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "https://hooks.example.com:25/in",
            "https://hooks.example.com:22/",
            "https://hooks.example.com:80/",
        ] {
            assert!(
                matches!(guard.parse_url(bad), Err(TargetError::Malformed(_))),
                "{bad:?}"
            );
        }
        let long = format!("https://hooks.example.com/{}", "a".repeat(MAX_URL_CHARS));
        assert!(guard.parse_url(&long).is_err());
        let local = TargetGuard {
            allow_private: true,
            ..TargetGuard::default()
        };
        assert!(local.parse_url("http://127.0.0.1:8080/in").is_ok());
    }

    #[tokio::test]
    async fn names_are_judged_by_every_address_they_resolve_to() {
        let resolver = FixedResolver(HashMap::from([
            ("public.example".to_owned(), vec![ip("93.184.215.14")]),
            ("metadata.example".to_owned(), vec![ip("169.254.169.254")]),
            (
                "mixed.example".to_owned(),
                vec![ip("93.184.215.14"), ip("10.0.0.7")],
            ),
            ("six.example".to_owned(), vec![ip("::ffff:127.0.0.1")]),
        ]));
        let guard = TargetGuard {
            allow_private: false,
            resolver: Arc::new(resolver),
        };
        assert!(guard.check("https://public.example/in").await.is_ok());
        for (url, bad) in [
            ("https://metadata.example/latest", "169.254.169.254"),
            ("https://MIXED.example/in", "10.0.0.7"),
            ("https://six.example/in", "::ffff:127.0.0.1"),
            ("https://127.0.0.1/in", "127.0.0.1"),
            ("https://[::1]:8443/in", "::1"),
            ("https://[fd00:ec2::254]/", "fd00:ec2::254"),
        ] {
            match guard.check(url).await {
                Err(TargetError::Forbidden { ip: got, .. }) => assert_eq!(got, ip(bad), "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
        assert!(matches!(
            guard.check("https://nowhere.example/in").await,
            Err(TargetError::Unresolvable { .. })
        ));
    }

    #[tokio::test]
    async fn the_system_resolver_sees_localhost_as_loopback() {
        let guard = TargetGuard::default();
        assert!(matches!(
            guard.check("https://localhost/in").await,
            Err(TargetError::Forbidden { .. })
        ));
        // RFC 6761: .invalid never resolves.
        assert!(matches!(
            guard.check("https://hooks.invalid/in").await,
            Err(TargetError::Unresolvable { .. })
        ));
    }
}
