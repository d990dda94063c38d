//! The households projection (`Projections::households`): household id →
//! `Household`, whose entries after a reopen stay encoded in the mapped
//! snapshot file until something first reads or changes them.
//!
//! Why: at province scale the households are most of the folded state (at
//! 10 M events, 9.6 M payouts in 360,000 households: 700 of the snapshot's
//! 850 MB, and ~4 GB once decoded). Decoding them all made a reopen take
//! 7–9 s, most of it the kernel zeroing the memory they fill
//! (BENCHMARKS.md). Here a reopen only indexes where each household's bytes
//! are; a household is decoded on its first use (a payout to it, its page,
//! the rules), once, by whichever thread gets there first.
//!
//! Encoding: in a binary format with a symbol table active (the snapshot),
//! the map is written as household id → the household's own postcard bytes
//! (a length-prefixed byte string), so a reopen can find each household
//! without decoding it. A household read from a snapshot and not changed
//! since is written to the next snapshot by copying those bytes, which is
//! sound because the next snapshot's symbol table starts with this one's
//! (`Snapshot::encode` seeds it; `sym::writing_table_extends`). In JSON the
//! map is a plain map of households, as before.
//!
//! Limits: the snapshot file stays mapped for the life of the loaded
//! projections (the file is replaced only by rename, so the mapping stays
//! valid; a superseded file's disk space comes back at the next start). A
//! household whose bytes fail to decode on first use (at open the file is
//! checked only for its format, the rest of the fold and its tie to the
//! chain) cannot be served: the process sets the snapshot file aside — the
//! next start replays the chain, which is the truth — and exits with
//! `EXIT_DAMAGED_SNAPSHOT` (`Source::damaged`). Nothing acknowledged is
//! lost: the snapshot is a cache of the chain. Like the eager decoding
//! before it, this finds damage to the structure, not to a value: the
//! snapshot has no checksum (a value changed in place is served).

use crate::projection::Household;
use crate::store::SnapshotBytes;
use crate::sym::Sym;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

/// A snapshot's bytes, with its symbol table, that undecoded households
/// are read from.
pub struct Source {
    bytes: SnapshotBytes,
    table: Arc<[Sym]>,
    /// Called once if a household in it turns out damaged: makes the next
    /// open replay instead of using this snapshot.
    discard: Box<dyn Fn() + Send + Sync>,
}

impl Source {
    pub fn new(bytes: SnapshotBytes, table: Arc<[Sym]>, discard: Box<dyn Fn() + Send + Sync>) -> Source {
        Source { bytes, table, discard }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn table(&self) -> &Arc<[Sym]> {
        &self.table
    }

    /// Where `slice` sits in this source, if it is part of it.
    fn offset_of(&self, slice: &[u8]) -> Option<(usize, usize)> {
        let base = self.bytes.as_ptr() as usize;
        let start = (slice.as_ptr() as usize).checked_sub(base)?;
        (start + slice.len() <= self.bytes.len()).then_some((start, slice.len()))
    }

    fn decode(&self, id: &str, at: (usize, usize)) -> Household {
        self.decode_part(&format!("household {id}"), at)
    }

    fn decode_part<T: serde::de::DeserializeOwned>(&self, what: &str, (start, len): (usize, usize)) -> T {
        let bytes = &self.bytes[start..start + len];
        match crate::sym::with_table(&self.table, || decode_exactly::<T>(bytes)) {
            Ok(value) => value,
            Err(error) => self.damaged(what, &error),
        }
    }

    /// A household in the snapshot cannot be decoded. Serving without it
    /// would show wrong pages and fold later events into a hole, and
    /// carrying on would copy its bytes into the next snapshot, so the
    /// process stops (`EXIT_DAMAGED_SNAPSHOT`, whichever thread found it)
    /// after setting the snapshot aside: the next start replays the chain.
    /// Nothing acknowledged is lost (each group was durable in the store
    /// before it was acknowledged); a group being written is not
    /// acknowledged, as after a kill.
    #[cold]
    fn damaged(&self, what: &str, error: &str) -> ! {
        tracing::error!(part = what, %error, "a part of the state snapshot is damaged; setting the snapshot aside");
        (self.discard)();
        eprintln!(
            "sunledger: {what} in the state snapshot is damaged ({error}); the snapshot is set aside and the next \
             start replays the chain; stopping"
        );
        std::process::exit(EXIT_DAMAGED_SNAPSHOT);
    }
}

/// The exit status of a process that found a damaged household in its
/// snapshot (EX_TEMPFAIL: start it again and it replays the chain).
pub const EXIT_DAMAGED_SNAPSHOT: i32 = 75;

/// A value's postcard bytes, all of them: trailing bytes are damage too.
fn decode_exactly<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    let (value, rest) = postcard::take_from_bytes::<T>(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after it", rest.len()));
    }
    Ok(value)
}

thread_local! {
    /// The source a snapshot is being decoded from (`Households::deserialize`
    /// indexes its households instead of decoding them).
    static LOADING: RefCell<Option<Arc<Source>>> = const { RefCell::new(None) };
}

/// Runs `decode` with `source` as the thread's loading source.
pub fn loading<T>(source: &Arc<Source>, decode: impl FnOnce() -> T) -> T {
    struct Restore(Option<Arc<Source>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            LOADING.with(|l| *l.borrow_mut() = previous);
        }
    }
    let _restore = Restore(LOADING.with(|l| l.borrow_mut().replace(source.clone())));
    decode()
}

struct Slot {
    household: OnceLock<Box<Household>>,
    /// Where its bytes are in the source, while they still say what it holds.
    encoded: Option<(usize, usize)>,
}

impl Slot {
    fn decoded(household: Household) -> Slot {
        Slot { household: OnceLock::from(Box::new(household)), encoded: None }
    }
}

/// Household id → household, decoded on first use (module docs).
#[derive(Default)]
pub struct Households {
    map: BTreeMap<Sym, Slot>,
    /// What undecoded slots are read from (None if there are none).
    source: Option<Arc<Source>>,
}

impl Households {
    fn household<'a>(&'a self, id: &Sym, slot: &'a Slot) -> &'a Household {
        slot.household.get_or_init(|| {
            let (source, at) = self.source.as_ref().zip(slot.encoded).expect("an undecoded household has its bytes");
            Box::new(source.decode(id, at))
        })
    }

    pub fn get(&self, id: &str) -> Option<&Household> {
        self.get_key_value(id).map(|(_, household)| household)
    }

    pub fn get_key_value(&self, id: &str) -> Option<(&Sym, &Household)> {
        let (id, slot) = self.map.get_key_value(id)?;
        Some((id, self.household(id, slot)))
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.map.contains_key(id)
    }

    /// The household, to change: its stored bytes no longer say what it
    /// holds, so the next snapshot encodes it afresh.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Household> {
        let Households { map, source } = self;
        let slot = map.get_mut(id)?;
        if slot.household.get().is_none() {
            let (source, at) = source.as_ref().zip(slot.encoded).expect("an undecoded household has its bytes");
            let _ = slot.household.set(Box::new(source.decode(id, at)));
        }
        slot.encoded = None;
        slot.household.get_mut().map(|household| &mut **household)
    }

    pub fn insert(&mut self, id: Sym, household: Household) {
        self.map.insert(id, Slot::decoded(household));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// In id order, decoding each as it is reached.
    pub fn iter(&self) -> impl Iterator<Item = (&Sym, &Household)> + '_ {
        self.map.iter().map(|(id, slot)| (id, self.household(id, slot)))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Sym> + '_ {
        self.map.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &Household> + '_ {
        self.iter().map(|(_, household)| household)
    }

    /// How many are still undecoded (diagnostics and tests).
    pub fn undecoded(&self) -> usize {
        self.map.values().filter(|slot| slot.household.get().is_none()).count()
    }

    /// The symbol table the next snapshot must start with for this map's
    /// stored bytes to be copied into it.
    pub fn source_table(&self) -> Option<&Arc<[Sym]>> {
        self.source.as_ref().map(|source| source.table())
    }
}

impl std::ops::Index<&str> for Households {
    type Output = Household;
    fn index(&self, id: &str) -> &Household {
        self.get(id).expect("no such household")
    }
}

impl<'a> IntoIterator for &'a Households {
    type Item = (&'a Sym, &'a Household);
    type IntoIter = Box<dyn Iterator<Item = (&'a Sym, &'a Household)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

impl Clone for Households {
    fn clone(&self) -> Households {
        let map = self
            .map
            .iter()
            .map(|(id, slot)| (*id, Slot { household: slot.household.clone(), encoded: slot.encoded }))
            .collect();
        Households { map, source: self.source.clone() }
    }
}

impl PartialEq for Households {
    fn eq(&self, other: &Households) -> bool {
        self.len() == other.len() && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}
impl Eq for Households {}

impl std::fmt::Debug for Households {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for Households {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let readable = serializer.is_human_readable();
        let mut map = serializer.serialize_map(Some(self.map.len()))?;
        if readable {
            for (id, household) in self.iter() {
                map.serialize_entry(id, household)?;
            }
            return map.end();
        }
        // Stored bytes can be copied only into a table that starts with the
        // one they were written with.
        let copyable = self.source.as_ref().filter(|s| crate::sym::writing_table_extends(s.table()));
        for (id, slot) in &self.map {
            match (copyable, slot.encoded) {
                (Some(source), Some((start, len))) => {
                    map.serialize_entry(id, &BytesRef(&source.bytes()[start..start + len]))?
                }
                _ => {
                    let bytes = postcard::to_stdvec(self.household(id, slot)).map_err(serde::ser::Error::custom)?;
                    map.serialize_entry(id, &BytesRef(&bytes))?
                }
            }
        }
        map.end()
    }
}

struct BytesRef<'a>(&'a [u8]);

impl Serialize for BytesRef<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(self.0)
    }
}

/// A household's (or a `Lazy` part's) encoded bytes as read: borrowed from
/// the input where the format allows it.
enum HouseholdBytes<'de> {
    Borrowed(&'de [u8]),
    Owned(Vec<u8>),
}

impl<'de> Deserialize<'de> for HouseholdBytes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<HouseholdBytes<'de>, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = HouseholdBytes<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an encoded household")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, bytes: &'de [u8]) -> Result<Self::Value, E> {
                Ok(HouseholdBytes::Borrowed(bytes))
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                Ok(HouseholdBytes::Owned(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
                Ok(HouseholdBytes::Owned(bytes))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

fn decode_now<T: serde::de::DeserializeOwned, E: serde::de::Error>(bytes: &[u8]) -> Result<T, E> {
    decode_exactly(bytes).map_err(E::custom)
}

impl<'de> Deserialize<'de> for Households {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Households, D::Error> {
        if deserializer.is_human_readable() {
            let map = BTreeMap::<Sym, Household>::deserialize(deserializer)?;
            return Ok(Households {
                map: map.into_iter().map(|(id, h)| (id, Slot::decoded(h))).collect(),
                source: None,
            });
        }
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Households;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of encoded households")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Households, A::Error> {
                let source = LOADING.with(|l| l.borrow().clone());
                let mut slots: Vec<(Sym, Slot)> = Vec::with_capacity(entries.size_hint().unwrap_or(0).min(1 << 20));
                let mut undecoded = false;
                while let Some((id, bytes)) = entries.next_entry::<Sym, HouseholdBytes<'de>>()? {
                    let at = match &bytes {
                        HouseholdBytes::Borrowed(slice) => source.as_ref().and_then(|s| s.offset_of(slice)),
                        HouseholdBytes::Owned(_) => None,
                    };
                    let slot = match (at, bytes) {
                        (Some(at), _) => {
                            undecoded = true;
                            Slot { household: OnceLock::new(), encoded: Some(at) }
                        }
                        // Not from a loading source: decode now, with
                        // whatever symbol table is active.
                        (None, HouseholdBytes::Borrowed(bytes)) => Slot::decoded(decode_now(bytes)?),
                        (None, HouseholdBytes::Owned(bytes)) => Slot::decoded(decode_now(&bytes)?),
                    };
                    slots.push((id, slot));
                }
                // Written in id order: built in one pass (as crate::sym::sorted_map).
                let written = slots.len();
                let map: BTreeMap<Sym, Slot> = slots.into_iter().collect();
                if map.len() != written {
                    return Err(serde::de::Error::custom("a household is stored twice"));
                }
                Ok(Households { map, source: if undecoded { source } else { None } })
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// A part of the projections other than the households that a reopen
/// leaves encoded in the mapped snapshot until first used, as a whole: the
/// card and person groups (`Projections::cards`, `persons`; 1.8 M entries at
/// 10 M events, ~0.4 s of a reopen), which only the writer reads, and only
/// for a household registration or update. Encoded like a household (a
/// length-prefixed byte string in a binary format with a symbol table,
/// copied into the next snapshot while unchanged; the value itself in JSON).
pub struct Lazy<T> {
    value: OnceLock<T>,
    encoded: Option<(usize, usize)>,
    source: Option<Arc<Source>>,
    /// What it is, for a damage report.
    what: &'static str,
}

impl<T: serde::de::DeserializeOwned> Lazy<T> {
    pub fn new(what: &'static str, value: T) -> Lazy<T> {
        Lazy { value: OnceLock::from(value), encoded: None, source: None, what }
    }

    pub fn get(&self) -> &T {
        self.value.get_or_init(|| {
            let (source, at) = self.source.as_ref().zip(self.encoded).expect("an undecoded part has its bytes");
            source.decode_part(self.what, at)
        })
    }

    /// To change: its stored bytes no longer say what it holds.
    pub fn get_mut(&mut self) -> &mut T {
        let _ = self.get();
        self.encoded = None;
        self.source = None;
        self.value.get_mut().expect("decoded above")
    }

    pub fn is_decoded(&self) -> bool {
        self.value.get().is_some()
    }
}

impl<T: Clone> Clone for Lazy<T> {
    fn clone(&self) -> Lazy<T> {
        Lazy { value: self.value.clone(), encoded: self.encoded, source: self.source.clone(), what: self.what }
    }
}

impl<T: serde::de::DeserializeOwned + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Lazy<T>) -> bool {
        self.get() == other.get()
    }
}
impl<T: serde::de::DeserializeOwned + Eq> Eq for Lazy<T> {}

impl<T: serde::de::DeserializeOwned + std::fmt::Debug> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl<T: serde::de::DeserializeOwned + Serialize> Serialize for Lazy<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return self.get().serialize(serializer);
        }
        if let (Some(source), Some((start, len))) = (&self.source, self.encoded) {
            if crate::sym::writing_table_extends(source.table()) {
                return serializer.serialize_bytes(&source.bytes()[start..start + len]);
            }
        }
        let bytes = postcard::to_stdvec(self.get()).map_err(serde::ser::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }
}

/// What a `Lazy` part is called in damage reports, by its type.
pub trait PartName {
    const NAME: &'static str;
}

impl<'de, T: serde::de::DeserializeOwned + PartName> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Lazy<T>, D::Error> {
        if deserializer.is_human_readable() {
            return Ok(Lazy::new(T::NAME, T::deserialize(deserializer)?));
        }
        let source = LOADING.with(|l| l.borrow().clone());
        let bytes = HouseholdBytes::deserialize(deserializer)?;
        let at = match &bytes {
            HouseholdBytes::Borrowed(slice) => source.as_ref().and_then(|s| s.offset_of(slice)),
            HouseholdBytes::Owned(_) => None,
        };
        Ok(match (at, bytes) {
            (Some(at), _) => Lazy { value: OnceLock::new(), encoded: Some(at), source, what: T::NAME },
            (None, HouseholdBytes::Borrowed(bytes)) => Lazy::new(T::NAME, decode_now(bytes)?),
            (None, HouseholdBytes::Owned(bytes)) => Lazy::new(T::NAME, decode_now(&bytes)?),
        })
    }
}
