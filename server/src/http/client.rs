//! Who the client is, for the failed-authentication limiter: the
//! connection's address, or, when the connection comes from a balancer
//! listed in `ATELIER_TRUSTED_PROXIES`, the last address of
//! `X-Forwarded-For` (the one that balancer saw; anything to its left was
//! written by the client and proves nothing).

use std::net::IpAddr;

use hyper::header::{HeaderMap, HeaderName};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

pub fn address(trusted_proxies: &[IpAddr], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if !trusted_proxies.contains(&peer) {
        return peer;
    }
    headers
        .get_all(X_FORWARDED_FOR)
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|list| list.rsplit(',').next())
        .and_then(|last| last.trim().parse::<IpAddr>().ok())
        .map_or(peer, |ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_counts_only_behind_a_trusted_proxy() {
        let balancer: IpAddr = "10.0.0.5".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(X_FORWARDED_FOR, "6.6.6.6, 203.0.113.7".parse().unwrap());
        assert_eq!(address(&[], balancer, &headers), balancer, "no proxy trusted: the peer");
        assert_eq!(address(&[balancer], balancer, &headers), "203.0.113.7".parse::<IpAddr>().unwrap());
        let stranger: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(address(&[balancer], stranger, &headers), stranger, "only the balancer is believed");
        headers.insert(X_FORWARDED_FOR, "garbage".parse().unwrap());
        assert_eq!(address(&[balancer], balancer, &headers), balancer);
    }
}
