//! Who visited a link, as coarsely as telling visitors apart needs: the
//! client a request comes from, reduced to a keyed hash of its network.

use crate::signing::SecretKey;
use std::net::IpAddr;

/// Where a visitor request comes from, as the edge saw it. Only its hash
/// ([`client_hash`]) is ever stored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    /// The address the request came from, if known.
    pub ip: Option<IpAddr>,
    /// The country CloudFront placed the viewer in (`CloudFront-Viewer-Country`).
    pub country: Option<String>,
}

impl Client {
    /// A client at `ip`, without a country.
    pub fn at(ip: IpAddr) -> Self {
        Client { ip: Some(ip), country: None }
    }

    /// The country, if it is a two-letter code (anything else is dropped).
    pub fn country_code(&self) -> Option<String> {
        self.country
            .as_deref()
            .filter(|c| c.len() == 2 && c.bytes().all(|b| b.is_ascii_alphabetic()))
            .map(|c| c.to_ascii_uppercase())
    }
}

/// The network an address belongs to, coarsely: an IPv4 /24 or an IPv6 /48
/// (IPv4-mapped addresses as IPv4).
pub fn coarse_network(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.0/24", o[0], o[1], o[2])
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => coarse_network(IpAddr::V4(v4)),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}::/48", s[0], s[1], s[2])
            }
        },
    }
}

/// The keyed hash a client is logged as: HMAC-SHA256 under the server's
/// key of its [coarse network](coarse_network), 16 characters. The same
/// network gives the same hash; without the key nothing leads back to it.
pub fn client_hash(key: &SecretKey, client: &Client) -> String {
    network_hash(key, &client.ip.map(coarse_network).unwrap_or_else(|| "unknown".into()))
}

/// The keyed hash of any network named as a string (a coarse network, or
/// the password throttle's `throttle::network_of`): what every stored key
/// that is per client network holds instead of an address, so that no
/// record names one.
pub fn network_hash(key: &SecretKey, network: &str) -> String {
    let mut hash = key.sign(format!("link activity client\n{network}").as_bytes());
    hash.truncate(16);
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_network_one_hash_and_no_address_in_it() {
        let key = SecretKey::generate();
        let a = client_hash(&key, &Client::at("198.51.100.7".parse().unwrap()));
        assert_eq!(a, client_hash(&key, &Client::at("198.51.100.200".parse().unwrap())));
        assert_ne!(a, client_hash(&key, &Client::at("198.51.101.7".parse().unwrap())));
        assert_ne!(a, client_hash(&SecretKey::generate(), &Client::at("198.51.100.7".parse().unwrap())));
        let v6 = |s: &str| client_hash(&key, &Client::at(s.parse().unwrap()));
        assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:ffff::9"));
        assert_ne!(v6("2001:db8:1::1"), v6("2001:db8:2::1"));
        assert_eq!(a.len(), 16);
        assert!(!a.contains("198") && !a.contains('.'), "{a}");
        assert_eq!(Client { ip: None, country: Some("fr".into()) }.country_code().as_deref(), Some("FR"));
        assert_eq!(Client { ip: None, country: Some("<script>".into()) }.country_code(), None);
    }
}
