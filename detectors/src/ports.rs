//! Sets of ports tested per row: a bit per port.

/// A set of TCP/UDP ports as 65,536 bits (8 KB): a membership test per row costs a
/// shift and a load, where the configured list is scanned.
#[derive(Debug, Clone)]
pub(crate) struct PortSet(Box<[u64; 1024]>);

impl PortSet {
    /// The set of `ports`.
    pub(crate) fn new(ports: &[u16]) -> Self {
        let mut bits = Box::new([0u64; 1024]);
        for &p in ports {
            bits[usize::from(p >> 6)] |= 1 << (p & 63);
        }
        PortSet(bits)
    }

    /// `port` (a log's Int32 taken as its low 16 bits, as `port as u16` would) is in
    /// the set.
    #[inline]
    pub(crate) fn contains(&self, port: i32) -> bool {
        let p = port as u16;
        self.0[usize::from(p >> 6)] & (1 << (p & 63)) != 0
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn holds_what_the_list_holds(
            ports in proptest::collection::vec(any::<u16>(), 0..20),
            probe in any::<i32>(),
        ) {
            let set = PortSet::new(&ports);
            for p in ports.iter().map(|&p| i32::from(p)).chain([probe, probe & 0xffff, 0, 65535]) {
                prop_assert_eq!(set.contains(p), ports.contains(&(p as u16)));
            }
        }
    }
}
