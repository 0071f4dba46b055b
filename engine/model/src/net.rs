//! Addresses: fast parsing, private/public scope, CIDR sets for allowlists.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses an IPv4 dotted quad from bytes without allocating; `None` if it is not one.
#[inline]
pub fn parse_v4(s: &[u8]) -> Option<u32> {
    if s.len() < 7 || s.len() > 15 {
        return None;
    }
    let mut out: u32 = 0;
    let mut octet: u32 = 0;
    let mut digits = 0;
    let mut dots = 0;
    for &b in s {
        match b {
            b'0'..=b'9' => {
                octet = octet * 10 + (b - b'0') as u32;
                digits += 1;
                if digits > 3 || octet > 255 {
                    return None;
                }
            }
            b'.' => {
                if digits == 0 || dots == 3 {
                    return None;
                }
                out = (out << 8) | octet;
                octet = 0;
                digits = 0;
                dots += 1;
            }
            _ => return None,
        }
    }
    if dots != 3 || digits == 0 {
        return None;
    }
    Some((out << 8) | octet)
}

/// Parses any address (IPv4 fast path, then IPv6).
pub fn parse_ip(s: &str) -> Option<IpAddr> {
    if let Some(v4) = parse_v4(s.as_bytes()) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    if s.contains(':') {
        return parse_v6(s).map(IpAddr::V6);
    }
    None
}

/// Parses an IPv6 address exactly as `Ipv6Addr::from_str` does (RFC 4291's text
/// forms: eight groups of 1 to 4 hex digits, or fewer around one `::` standing for
/// at least one zero group; the last two groups may be an IPv4 address), in a
/// tenth of its time: the standard parser tries an IPv4 address at every group,
/// this one only where the group holds a `.`.
pub fn parse_v6(s: &str) -> Option<Ipv6Addr> {
    let b = s.as_bytes();
    let mut at = 0;
    let mut head = [0u16; 8];
    let (head_size, head_v4) = v6_groups(s, &mut at, &mut head);
    if head_size == 8 {
        return (at == b.len()).then(|| Ipv6Addr::from(head));
    }
    if head_v4 || b.get(at..at + 2) != Some(b"::") {
        return None;
    }
    at += 2;
    let mut tail = [0u16; 7];
    let limit = 8 - (head_size + 1);
    let (tail_size, _) = v6_groups(s, &mut at, &mut tail[..limit]);
    if at != b.len() {
        return None;
    }
    head[8 - tail_size..].copy_from_slice(&tail[..tail_size]);
    Some(Ipv6Addr::from(head))
}

/// Reads up to `out.len()` groups from `s[*at..]` (each after the first behind a `:`)
/// as the standard parser's `read_groups` does: how many, and whether the last two
/// were an IPv4 address. `*at` is left after the last group read.
fn v6_groups(s: &str, at: &mut usize, out: &mut [u16]) -> (usize, bool) {
    let b = s.as_bytes();
    let limit = out.len();
    for i in 0..limit {
        let mut p = *at;
        if i > 0 {
            if b.get(p) != Some(&b':') {
                return (i, false);
            }
            p += 1;
        }
        // The group's hex digits (more than four: no group).
        let (mut group, mut q) = (0u16, p);
        while let Some(&c) = b.get(q) {
            let digit = match c {
                b'0'..=b'9' => c - b'0',
                b'a'..=b'f' => c - b'a' + 10,
                b'A'..=b'F' => c - b'A' + 10,
                _ => break,
            };
            if q - p == 4 {
                return (i, false);
            }
            group = (group << 4) | u16::from(digit);
            q += 1;
        }
        // Digits and a `.`: an IPv4 address, which must end the text (the standard
        // parser takes the longest one there is, and nothing may follow one), in the
        // last two groups. Else the digits read as a group, and the `.` then ends
        // the address unread, as anything else not a `:` does: the caller fails on it.
        if b.get(q) == Some(&b'.')
            && i + 1 < limit
            && let Ok(v4) = Ipv4Addr::from_str(&s[p..])
        {
            let v4 = u32::from(v4);
            (out[i], out[i + 1]) = ((v4 >> 16) as u16, v4 as u16);
            *at = b.len();
            return (i + 2, true);
        }
        if q == p {
            return (i, false);
        }
        out[i] = group;
        *at = q;
    }
    (limit, false)
}

/// Whether an address is private to a network (never routed on the internet):
/// RFC 1918, carrier-grade NAT (100.64/10, which AWS also uses inside VPCs),
/// link-local, loopback; IPv6 unique-local, link-local and loopback.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(u32::from(v4)),
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80 || v6.is_loopback()
        }
    }
}

#[inline]
pub fn is_private_v4(a: u32) -> bool {
    let top = a >> 24;
    top == 10
        || (a >> 20) == 0xac1 // 172.16/12
        || (a >> 16) == 0xc0a8 // 192.168/16
        || (a >> 22) == (100 << 2 | 1) // 100.64/10
        || (a >> 16) == 0xa9fe // 169.254/16
        || top == 127
}

/// Where an address sits, as the detectors see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum Scope {
    /// Missing or not an address.
    Unknown = 0,
    Private = 1,
    Public = 2,
}

/// The scope of an address written as text.
#[inline]
pub fn scope_of(s: &str) -> Scope {
    if let Some(v4) = parse_v4(s.as_bytes()) {
        return if is_private_v4(v4) {
            Scope::Private
        } else {
            Scope::Public
        };
    }
    match parse_ip(s) {
        Some(ip) if is_private(ip) => Scope::Private,
        Some(_) => Scope::Public,
        None => Scope::Unknown,
    }
}

/// One CIDR block (a bare address is a /32 or /128).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    net: u128,
    prefix: u8,
    v6: bool,
}

impl Cidr {
    fn bits(ip: IpAddr) -> (u128, bool) {
        match ip {
            IpAddr::V4(v4) => (u32::from(v4) as u128, false),
            IpAddr::V6(v6) => (u128::from(v6), true),
        }
    }

    fn mask(prefix: u8, v6: bool) -> u128 {
        let width = if v6 { 128 } else { 32 };
        if prefix == 0 {
            0
        } else {
            (u128::MAX >> (128 - width)) & !((1u128 << (width - prefix as u32)) - 1)
        }
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (bits, v6) = Self::bits(ip);
        v6 == self.v6 && bits & Self::mask(self.prefix, v6) == self.net
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let ip =
            parse_ip(addr.trim()).ok_or_else(|| format!("`{s}` is not an IP address or CIDR"))?;
        let (bits, v6) = Self::bits(ip);
        let width = if v6 { 128 } else { 32 };
        let prefix = match prefix {
            None => width,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= width)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0–{width}"))?,
        };
        Ok(Cidr {
            net: bits & Self::mask(prefix, v6),
            prefix,
            v6,
        })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.v6 {
            write!(f, "{}/{}", Ipv6Addr::from(self.net), self.prefix)
        } else {
            write!(f, "{}/{}", Ipv4Addr::from(self.net as u32), self.prefix)
        }
    }
}

impl Serialize for Cidr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of CIDR blocks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CidrSet(pub Vec<Cidr>);

impl CidrSet {
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|c| c.contains(ip))
    }

    /// Whether the address written as text is in the set (`false` if unparsable).
    pub fn contains_str(&self, s: &str) -> bool {
        !self.is_empty() && parse_ip(s).is_some_and(|ip| self.contains(ip))
    }
}

/// Ordered by text (config maps keyed by CIDR serialize in a stable order).
impl PartialOrd for Cidr {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cidr {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.to_string().cmp(&other.to_string())
    }
}

/// Bytes per GB as AWS bills data transfer (GiB).
pub const BYTES_PER_GB: f64 = 1_073_741_824.0;

/// What `bytes` crossing Availability Zones cost at `usd_per_gb` charged in each
/// direction (the sender pays data out, the receiver data in): the one price formula
/// of the cross-AZ detector and the SQL `cross_az_cost` function.
pub fn cross_az_usd(bytes: f64, usd_per_gb: f64) -> f64 {
    bytes / BYTES_PER_GB * usd_per_gb * 2.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_parser_matches_std() {
        for s in [
            "10.0.0.1",
            "255.255.255.255",
            "0.0.0.0",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "01.2.3.4",
            "1..2.3",
            "a.b.c.d",
            "1.2.3.4 ",
            "2001:db8::1",
            "",
        ] {
            let std = Ipv4Addr::from_str(s).ok().map(u32::from);
            let ours = parse_v4(s.as_bytes());
            // std rejects leading zeros; we accept them (AWS never writes them).
            if s != "01.2.3.4" {
                assert_eq!(ours, std, "{s}");
            }
        }
    }

    /// `parse_v6` against the standard parser.
    fn same_as_std(s: &str) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert_eq!(parse_v6(s), Ipv6Addr::from_str(s).ok(), "{:?}", s);
        Ok(())
    }

    #[test]
    fn v6_parser_matches_std() {
        for s in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7:8:9",
            "1:2:3:4:5:6:7",
            "1::2::3",
            ":1::2",
            "1::2:",
            "12345::",
            "2001:db8::1",
            "2001:DB8::A",
            "::ffff:10.0.0.1",
            "::ffff:1.2.3.4:5",
            "1:2:3:4:5:6:1.2.3.4",
            "1:2:3:4:5:6:7:1.2.3.4",
            "1:2:3:4:5:1.2.3.4",
            "1::1.2.3.4",
            "::1.2.3",
            "::01.2.3.4",
            "::1.2.3.256",
            "::1.2.3.4x",
            "1:2::3:4.5.6.7",
            "1.2.3.4::",
            "::g",
            "1:2:3:4:5:6:7:8 ",
            "fe80::1%eth0",
            "",
            ":",
            ":::",
            "1:::2",
            "0000:0000:0000:0000:0000:0000:0000:0001",
        ] {
            same_as_std(s).unwrap();
        }
    }

    proptest::proptest! {
        // Every address, written every way the standard library writes or reads one.
        #[test]
        fn v6_parser_reads_what_std_writes(
            bits in proptest::prelude::any::<u128>(),
            zeros in proptest::prelude::any::<u8>(),
            upper in proptest::prelude::any::<bool>(),
        ) {
            // Runs of zero groups, so that `::` appears at every place.
            let mut groups = Ipv6Addr::from(bits).segments();
            for (k, g) in groups.iter_mut().enumerate() {
                if zeros & (1 << k) != 0 {
                    *g = 0;
                }
            }
            let ip = Ipv6Addr::from(groups);
            let full = groups.map(|g| format!("{g:x}")).join(":");
            let padded = groups.map(|g| format!("{g:04x}")).join(":");
            let [a, b, c, d] = ip.octets()[12..] else { unreachable!() };
            let v4_tail = format!("{}:{a}.{b}.{c}.{d}", groups[..6].iter().map(|g| format!("{g:x}")).collect::<Vec<_>>().join(":"));
            for s in [ip.to_string(), full, padded, v4_tail] {
                let s = if upper { s.to_uppercase() } else { s };
                same_as_std(&s)?;
                proptest::prop_assert_eq!(parse_v6(&s), Some(ip));
            }
        }

        // And any text of the characters an address is made of.
        #[test]
        fn v6_parser_rejects_what_std_rejects(
            s in "[0-9a-fA-F:.]{0,45}",
            edit in proptest::prelude::any::<(u8, char)>(),
        ) {
            same_as_std(&s)?;
            // The same text with one character replaced, inserted or deleted.
            let mut chars: Vec<char> = s.chars().collect();
            let at = usize::from(edit.0) % (chars.len() + 1);
            chars.insert(at, edit.1);
            same_as_std(&chars.iter().collect::<String>())?;
            chars.remove(at);
            if at < chars.len() {
                chars.remove(at);
                same_as_std(&chars.iter().collect::<String>())?;
            }
        }
    }

    #[test]
    fn scopes() {
        let cases = [
            ("10.1.2.3", Scope::Private),
            ("172.16.0.1", Scope::Private),
            ("172.31.255.1", Scope::Private),
            ("172.32.0.1", Scope::Public),
            ("192.168.1.1", Scope::Private),
            ("100.64.0.1", Scope::Private),
            ("100.128.0.1", Scope::Public),
            ("169.254.169.254", Scope::Private),
            ("8.8.8.8", Scope::Public),
            ("fd00::1", Scope::Private),
            ("fe80::1", Scope::Private),
            ("2001:db8::1", Scope::Public),
            ("-", Scope::Unknown),
            ("junk", Scope::Unknown),
        ];
        for (s, want) in cases {
            assert_eq!(scope_of(s), want, "{s}");
        }
    }

    #[test]
    fn cidrs() {
        let c: Cidr = "10.0.16.0/20".parse().unwrap();
        assert!(c.contains(parse_ip("10.0.31.255").unwrap()));
        assert!(!c.contains(parse_ip("10.0.32.0").unwrap()));
        assert!(!c.contains(parse_ip("fd00::1").unwrap()));
        let host: Cidr = "203.0.113.7".parse().unwrap();
        assert_eq!(host.to_string(), "203.0.113.7/32");
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(parse_ip("8.8.8.8").unwrap()));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(parse_ip("2001:db8:1::5").unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense".parse::<Cidr>().is_err());
        let set = CidrSet(vec![c, v6]);
        assert!(set.contains_str("2001:db8::9"));
        assert!(!set.contains_str("-"));
    }
}
