//! A hash map whose keys and values share their slot: one load to find a key.
//!
//! A `hashbrown` lookup reads the table's control bytes, then the bucket: two cache
//! misses a row once a table outgrows the caches, and the rows that look up an
//! interface's peers or a run's names meet mostly cold entries. Here a slot holds the
//! key and its value side by side in one array, probed linearly from the key's home
//! slot and at most three-quarters full, so a lookup mostly costs the one line of its
//! home slot (`detectors/bench/README.md`, session 29). Keys are small `Copy` values with
//! a reserved empty key; there is no removal (a table is dropped whole).

/// A key of a [`FlatMap`].
pub trait FlatKey: Copy + Eq {
    /// Marks an empty slot: never a key of the map.
    const EMPTY: Self;
    /// The key's hash, its high 32 bits well mixed (they pick the home slot).
    fn hash(self) -> u64;

    /// Whether two keys are equal: `==` unless a key compares faster another way
    /// (a tuple's `==` stops at the first field that differs, a branch per field).
    #[inline(always)]
    fn same(self, other: Self) -> bool {
        self == other
    }
}

/// Mixes `x` so that its high 32 bits depend on every bit of it.
#[inline]
pub fn mix(x: u64) -> u64 {
    (x.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (x >> 32)).wrapping_mul(0xD6E8_FEB8_6659_FD93)
}

/// `K` → `V`, deterministic (no seed: the same inserts give the same iteration order).
#[derive(Debug, Clone)]
pub struct FlatMap<K, V> {
    /// A power of two of slots (or none before the first insert).
    slots: Vec<(K, V)>,
    len: usize,
}

impl<K, V> Default for FlatMap<K, V> {
    fn default() -> Self {
        FlatMap {
            slots: Vec::new(),
            len: 0,
        }
    }
}

/// Slots at the first insert.
const FIRST_SLOTS: usize = 8;

impl<K: FlatKey, V: Copy + Default> FlatMap<K, V> {
    /// An empty map with room for `n` keys before it grows.
    pub fn with_capacity(n: usize) -> Self {
        // At most three quarters full with `n` keys (as `room_for_one`).
        let slots = n
            .saturating_mul(4)
            .div_ceil(3)
            .next_power_of_two()
            .max(FIRST_SLOTS);
        FlatMap {
            slots: vec![(K::EMPTY, V::default()); slots],
            len: 0,
        }
    }

    #[inline]
    fn home(&self, key: K) -> usize {
        (key.hash() >> 32) as usize & (self.slots.len() - 1)
    }

    /// The value of `key`.
    #[inline]
    pub fn get(&self, key: K) -> Option<&V> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let (k, v) = &self.slots[i];
            // (An empty slot first: the empty key is no key.)
            if k.same(K::EMPTY) {
                return None;
            }
            if k.same(key) {
                return Some(v);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value of `key`, a default one inserted if it had none. (Always inlined: in
    /// the group-bys' loop a call per row cost cross-AZ a fifth of its time.)
    ///
    /// # Panics
    /// `key` is [`FlatKey::EMPTY`].
    #[inline(always)]
    pub fn entry_or_default(&mut self, key: K) -> &mut V {
        assert!(key != K::EMPTY, "the empty key is no key");
        self.room_for_one();
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        loop {
            let k = self.slots[i].0;
            if k.same(key) {
                break;
            }
            if k.same(K::EMPTY) {
                self.slots[i] = (key, V::default());
                self.len += 1;
                break;
            }
            i = (i + 1) & mask;
        }
        &mut self.slots[i].1
    }

    /// Gives `key`, which has no value yet, the value `value`.
    ///
    /// # Panics
    /// `key` is [`FlatKey::EMPTY`].
    pub fn insert_new(&mut self, key: K, value: V) {
        assert!(key != K::EMPTY, "the empty key is no key");
        self.room_for_one();
        self.place(key, value);
        self.len += 1;
    }

    /// Puts a key that is not in the map into its first empty slot.
    fn place(&mut self, key: K, value: V) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(key);
        while !self.slots[i].0.same(K::EMPTY) {
            debug_assert!(self.slots[i].0 != key, "a key placed twice");
            i = (i + 1) & mask;
        }
        self.slots[i] = (key, value);
    }

    /// Grows the slots if one more key would fill more than three quarters of them
    /// (so that a probe mostly ends in its home slot's line).
    fn room_for_one(&mut self) {
        if 4 * (self.len + 1) > 3 * self.slots.len() {
            self.grow();
        }
    }

    fn grow(&mut self) {
        let n = (2 * self.slots.len()).max(FIRST_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![(K::EMPTY, V::default()); n]);
        for (k, v) in old.into_iter().filter(|(k, _)| *k != K::EMPTY) {
            self.place(k, v);
        }
    }

    /// The keys and their values, in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (K, &V)> + '_ {
        self.slots
            .iter()
            .filter(|(k, _)| *k != K::EMPTY)
            .map(|(k, v)| (*k, v))
    }

    /// The values, in slot order.
    pub fn values(&self) -> impl Iterator<Item = &V> + '_ {
        self.iter().map(|(_, v)| v)
    }
}

impl<K: FlatKey, V> IntoIterator for FlatMap<K, V> {
    type Item = (K, V);
    type IntoIter = std::iter::Filter<std::vec::IntoIter<(K, V)>, fn(&(K, V)) -> bool>;

    /// The keys and their values, in slot order.
    fn into_iter(self) -> Self::IntoIter {
        let full: fn(&(K, V)) -> bool = |(k, _)| *k != K::EMPTY;
        self.slots.into_iter().filter(full)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    impl FlatKey for u64 {
        const EMPTY: u64 = u64::MAX;
        fn hash(self) -> u64 {
            mix(self)
        }
    }

    proptest! {
        // Against a std map: lookups and upserts of keys that differ in few bits
        // (the same home slot often), and a rebuild from the pairs.
        #[test]
        fn like_a_map(ops in proptest::collection::vec((any::<u16>(), 0u32..64, any::<u8>()), 0..3000)) {
            let mut t: FlatMap<u64, u32> = FlatMap::default();
            let mut m: HashMap<u64, u32> = HashMap::new();
            for (k, shift, add) in ops {
                let key = u64::from(k) << (shift % 48);
                prop_assert_eq!(t.get(key), m.get(&key));
                *t.entry_or_default(key) += u32::from(add);
                *m.entry(key).or_default() += u32::from(add);
            }
            prop_assert_eq!(t.len, m.len());
            prop_assert!(t.slots.len() <= (4 * t.len).max(FIRST_SLOTS));
            let mut pairs: Vec<(u64, u32)> = t.iter().map(|(k, v)| (k, *v)).collect();
            pairs.sort_unstable();
            let mut want: Vec<(u64, u32)> = m.into_iter().collect();
            want.sort_unstable();
            prop_assert_eq!(&pairs, &want);
            let mut owned: Vec<(u64, u32)> = t.clone().into_iter().collect();
            owned.sort_unstable();
            prop_assert_eq!(&owned, &pairs);
            let mut rebuilt: FlatMap<u64, u32> = FlatMap::default();
            for &(k, v) in &pairs {
                rebuilt.insert_new(k, v);
            }
            prop_assert_eq!(rebuilt.len, pairs.len());
            for (k, v) in &pairs {
                prop_assert_eq!(rebuilt.get(*k), Some(v));
            }
        }
    }

    #[test]
    fn a_sized_map_holds_its_keys_without_growing() {
        for n in [0, 1, 5, 6, 7, 100, 1000] {
            let mut t: FlatMap<u64, u32> = FlatMap::with_capacity(n);
            let slots = t.slots.len();
            for k in 0..n as u64 {
                *t.entry_or_default(k) += 1;
            }
            assert_eq!((t.slots.len(), t.len), (slots, n), "{n} keys");
            // The smallest power of two that holds them.
            assert!(
                slots == FIRST_SLOTS || 3 * (slots / 2) < 4 * n,
                "{n} keys: {slots} slots"
            );
        }
    }

    #[test]
    fn empty() {
        let mut t: FlatMap<u64, u32> = FlatMap::default();
        assert_eq!(t.get(3), None);
        *t.entry_or_default(3) = 7;
        assert_eq!((t.len, t.get(3)), (1, Some(&7)));
        assert_eq!(t.get(u64::MAX), None, "the empty key has no value");
    }

    #[test]
    #[should_panic(expected = "the empty key is no key")]
    fn the_empty_key_is_refused() {
        FlatMap::<u64, u32>::default().entry_or_default(u64::MAX);
    }
}
