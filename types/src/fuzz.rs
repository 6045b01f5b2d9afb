//! 10,000 random inputs per parser: errors are fine, panics are not, and
//! whatever parses prints back to something that parses to the same value.

use proptest::prelude::*;

use crate::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]

    #[test]
    fn parsers_never_panic(s in ".{0,40}") {
        let _ = IfName::parse(&s);
        let _ = ContainerRef::parse(&s);
        let _ = VlanId::parse(&s);
        let _ = Mtu::parse(&s);
        if let Ok(c) = Cidr::parse(&s) {
            prop_assert_eq!(Cidr::parse(&c.to_string()).unwrap(), c);
        }
        if let Ok(m) = MacAddr::parse(&s) {
            prop_assert_eq!(MacAddr::parse(&m.to_string()).unwrap(), m);
        }
    }

    #[test]
    fn cidr_like_strings(a in any::<[u8; 4]>(), p in 0u8..40, v6 in any::<u128>()) {
        let s = format!("{}.{}.{}.{}/{p}", a[0], a[1], a[2], a[3]);
        prop_assert_eq!(Cidr::parse(&s).is_ok(), p <= 32);
        let s6 = format!("{}/{}", std::net::Ipv6Addr::from(v6), p * 3);
        prop_assert_eq!(Cidr::parse(&s6).is_ok(), p * 3 <= 128);
    }

    #[test]
    fn mac_like_strings(b in any::<[u8; 6]>()) {
        let s = format!("{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5]);
        prop_assert_eq!(MacAddr::parse(&s).is_ok(), b[0] & 1 == 0 && b != [0; 6]);
    }

    #[test]
    fn vlan_and_mtu_ranges(v in any::<u16>(), m in any::<u32>()) {
        prop_assert_eq!(VlanId::new(v).is_ok(), (1..=4094).contains(&v));
        prop_assert_eq!(Mtu::new(m).is_ok(), (68..=65535).contains(&m));
    }
}
