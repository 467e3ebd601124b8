//! What the switch needs to know of a packet: its IPv4 source and
//! destination, and whether the destination means every host.

use std::net::Ipv4Addr;

/// The addresses of an IPv4 packet, or `None` for anything else (IPv6 is
/// off inside the hosts; a short or foreign frame is dropped).
pub fn ipv4_addrs(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    if packet.len() < 20 || packet[0] >> 4 != 4 {
        return None;
    }
    let src = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let dst = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    Some((src, dst))
}

/// Multicast and broadcast reach every other host on the LAN.
pub fn is_flood(dst: Ipv4Addr, lan_broadcast: Ipv4Addr) -> bool {
    dst.is_multicast() || dst.is_broadcast() || dst == lan_broadcast
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_addresses_of_ipv4_only() {
        let mut p = [0u8; 20];
        p[0] = 0x45;
        p[12..16].copy_from_slice(&[198, 18, 0, 1]);
        p[16..20].copy_from_slice(&[224, 0, 0, 251]);
        assert_eq!(
            ipv4_addrs(&p),
            Some((Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(224, 0, 0, 251)))
        );
        p[0] = 0x60;
        assert_eq!(ipv4_addrs(&p), None, "IPv6");
        assert_eq!(ipv4_addrs(&[0x45; 19]), None, "too short");
    }

    #[test]
    fn multicast_and_broadcast_flood() {
        let bcast = Ipv4Addr::new(198, 19, 255, 255);
        assert!(is_flood(Ipv4Addr::new(224, 0, 0, 251), bcast));
        assert!(is_flood(Ipv4Addr::BROADCAST, bcast));
        assert!(is_flood(bcast, bcast));
        assert!(!is_flood(Ipv4Addr::new(198, 18, 0, 2), bcast));
    }
}
