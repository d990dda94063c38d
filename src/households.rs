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

/// One value that may still be encoded in a source: decoded on first use,
/// once; its stored bytes dropped when it is changed. What `Households`
/// keeps per household and `Lazy` keeps for a whole part.
struct Cell<T> {
    value: OnceLock<T>,
    /// Where its bytes are in the source, while they still say what it holds.
    encoded: Option<(usize, usize)>,
}

impl<T: serde::de::DeserializeOwned + Serialize> Cell<T> {
    fn decoded(value: T) -> Cell<T> {
        Cell { value: OnceLock::from(value), encoded: None }
    }

    fn get(&self, source: Option<&Arc<Source>>, what: impl FnOnce() -> String) -> &T {
        self.value.get_or_init(|| {
            let (source, at) = source.zip(self.encoded).expect("an undecoded value has its bytes");
            source.decode_part(&what(), at)
        })
    }

    fn get_mut(&mut self, source: Option<&Arc<Source>>, what: impl FnOnce() -> String) -> &mut T {
        let _ = self.get(source, what);
        self.encoded = None;
        self.value.get_mut().expect("decoded above")
    }

    fn is_decoded(&self) -> bool {
        self.value.get().is_some()
    }

    /// Its bytes for a snapshot: the stored ones when the active writing
    /// table starts with the source's (`sym::writing_table_extends`),
    /// else encoded afresh.
    fn write_bytes<S: Serializer>(
        &self,
        serializer: S,
        source: Option<&Arc<Source>>,
        what: impl FnOnce() -> String,
    ) -> Result<S::Ok, S::Error> {
        if let (Some(source), Some((start, len))) = (source, self.encoded) {
            if crate::sym::writing_table_extends(source.table()) {
                return serializer.serialize_bytes(&source.bytes()[start..start + len]);
            }
        }
        let bytes = postcard::to_stdvec(self.get(source, what)).map_err(serde::ser::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }

    /// From bytes as read: left encoded if they are part of `source` (a
    /// snapshot being loaded), else decoded now with the active table.
    fn read_bytes<E: serde::de::Error>(bytes: EncodedBytes<'_>, source: Option<&Arc<Source>>) -> Result<Cell<T>, E> {
        let decode = |bytes: &[u8]| decode_exactly::<T>(bytes).map_err(E::custom);
        match bytes {
            EncodedBytes::Borrowed(slice) => match source.and_then(|s| s.offset_of(slice)) {
                Some(at) => Ok(Cell { value: OnceLock::new(), encoded: Some(at) }),
                None => Ok(Cell::decoded(decode(slice)?)),
            },
            EncodedBytes::Owned(bytes) => Ok(Cell::decoded(decode(&bytes)?)),
        }
    }
}

impl<T: Clone> Clone for Cell<T> {
    fn clone(&self) -> Cell<T> {
        Cell { value: self.value.clone(), encoded: self.encoded }
    }
}

fn household_named(id: &str) -> impl FnOnce() -> String + '_ {
    move || format!("household {id}")
}

/// Household id → household, decoded on first use (module docs).
#[derive(Clone, Default)]
pub struct Households {
    map: BTreeMap<Sym, Cell<Box<Household>>>,
    /// What undecoded households are read from (None if there are none).
    source: Option<Arc<Source>>,
}

impl Households {
    pub fn get(&self, id: &str) -> Option<&Household> {
        self.get_key_value(id).map(|(_, household)| household)
    }

    pub fn get_key_value(&self, id: &str) -> Option<(&Sym, &Household)> {
        let (id, cell) = self.map.get_key_value(id)?;
        Some((id, cell.get(self.source.as_ref(), household_named(id))))
    }

    /// The households of `ids` (ascending, each once) that exist, in id
    /// order, decoding those alone. Ids that sit together in id order (a
    /// village's, in practice: household ids are coded by region) are found
    /// in one walk over their span instead of a search each; a walk that
    /// passes more other households than there are ids stops, and the rest
    /// are searched for.
    pub fn many<'a>(&'a self, ids: &[&str]) -> Vec<(&'a Sym, &'a Household)> {
        debug_assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascending, each once");
        let mut found = Vec::with_capacity(ids.len());
        let Some(first) = ids.first() else { return found };
        let (mut wanted, mut others) = (0, 0);
        for (id, cell) in self.map.range::<str, _>((std::ops::Bound::Included(*first), std::ops::Bound::Unbounded)) {
            // Skip the ids that no household has.
            while wanted < ids.len() && ids[wanted] < id.as_str() {
                wanted += 1;
            }
            if wanted == ids.len() {
                break;
            }
            if ids[wanted] == id.as_str() {
                found.push((id, &**cell.get(self.source.as_ref(), household_named(id))));
                wanted += 1;
            } else {
                others += 1;
                if others > ids.len() {
                    break;
                }
            }
        }
        found.extend(ids[wanted..].iter().filter_map(|id| self.get_key_value(id)));
        found
    }

    /// The household, to change: its stored bytes no longer say what it
    /// holds, so the next snapshot encodes it afresh.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut Household> {
        let cell = self.map.get_mut(id)?;
        Some(cell.get_mut(self.source.as_ref(), household_named(id)))
    }

    pub fn insert(&mut self, id: Sym, household: Household) {
        self.map.insert(id, Cell::decoded(Box::new(household)));
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// In id order, decoding each as it is reached.
    pub fn iter(&self) -> impl Iterator<Item = (&Sym, &Household)> + '_ {
        self.map.iter().map(|(id, cell)| (id, &**cell.get(self.source.as_ref(), household_named(id))))
    }

    pub fn keys(&self) -> impl Iterator<Item = &Sym> + '_ {
        self.map.keys()
    }

    pub fn values(&self) -> impl Iterator<Item = &Household> + '_ {
        self.iter().map(|(_, household)| household)
    }

    /// How many are still undecoded (diagnostics and tests).
    pub fn undecoded(&self) -> usize {
        self.map.values().filter(|cell| !cell.is_decoded()).count()
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
        for (id, cell) in &self.map {
            if readable {
                map.serialize_entry(id, &**cell.get(self.source.as_ref(), household_named(id)))?;
            } else {
                map.serialize_entry(id, &AsBytes { cell, source: self.source.as_ref(), id })?;
            }
        }
        map.end()
    }
}

/// A household as its snapshot bytes (`Cell::write_bytes`).
struct AsBytes<'a> {
    cell: &'a Cell<Box<Household>>,
    source: Option<&'a Arc<Source>>,
    id: &'a str,
}

impl Serialize for AsBytes<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.cell.write_bytes(serializer, self.source, household_named(self.id))
    }
}

/// Encoded bytes as read: borrowed from the input where the format allows it.
enum EncodedBytes<'de> {
    Borrowed(&'de [u8]),
    Owned(Vec<u8>),
}

impl<'de> Deserialize<'de> for EncodedBytes<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EncodedBytes<'de>, D::Error> {
        struct BytesVisitor;
        impl<'de> Visitor<'de> for BytesVisitor {
            type Value = EncodedBytes<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("encoded bytes")
            }
            fn visit_borrowed_bytes<E: serde::de::Error>(self, bytes: &'de [u8]) -> Result<Self::Value, E> {
                Ok(EncodedBytes::Borrowed(bytes))
            }
            fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
                Ok(EncodedBytes::Owned(bytes.to_vec()))
            }
            fn visit_byte_buf<E: serde::de::Error>(self, bytes: Vec<u8>) -> Result<Self::Value, E> {
                Ok(EncodedBytes::Owned(bytes))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

impl<'de> Deserialize<'de> for Households {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Households, D::Error> {
        if deserializer.is_human_readable() {
            let map = BTreeMap::<Sym, Household>::deserialize(deserializer)?;
            let map = map.into_iter().map(|(id, h)| (id, Cell::decoded(Box::new(h)))).collect();
            return Ok(Households { map, source: None });
        }
        struct MapVisitor;
        impl<'de> Visitor<'de> for MapVisitor {
            type Value = Households;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map of encoded households")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Households, A::Error> {
                let source = LOADING.with(|l| l.borrow().clone());
                let mut cells = Vec::with_capacity(entries.size_hint().unwrap_or(0).min(1 << 20));
                while let Some((id, bytes)) = entries.next_entry::<Sym, EncodedBytes<'de>>()? {
                    cells.push((id, Cell::read_bytes(bytes, source.as_ref())?));
                }
                // Written in id order: built in one pass (as crate::sym::sorted_map).
                let written = cells.len();
                let map: BTreeMap<Sym, Cell<Box<Household>>> = cells.into_iter().collect();
                if map.len() != written {
                    return Err(serde::de::Error::custom("a household is stored twice"));
                }
                let undecoded = map.values().any(|cell| !cell.is_decoded());
                Ok(Households { map, source: source.filter(|_| undecoded) })
            }
        }
        deserializer.deserialize_map(MapVisitor)
    }
}

/// A part of the projections other than the households that a reopen
/// leaves encoded in the mapped snapshot until first used, as a whole: the
/// card and person groups (`Projections::cards`, `persons`; 1.45 M groups at
/// 10 M events, measured), which only the writer reads, and only for a household
/// registration or update. Encoded like a household (a length-prefixed byte
/// string in a binary format with a symbol table, copied into the next
/// snapshot while unchanged; the value itself in JSON).
pub struct Lazy<T> {
    cell: Cell<T>,
    source: Option<Arc<Source>>,
}

/// What a `Lazy` part is called in damage reports, by its type.
pub trait PartName {
    const NAME: &'static str;
}

fn part_named<T: PartName>() -> String {
    T::NAME.to_string()
}

impl<T: serde::de::DeserializeOwned + Serialize + PartName> Lazy<T> {
    pub fn new(value: T) -> Lazy<T> {
        Lazy { cell: Cell::decoded(value), source: None }
    }

    pub fn get(&self) -> &T {
        self.cell.get(self.source.as_ref(), part_named::<T>)
    }

    /// To change: its stored bytes no longer say what it holds.
    pub fn get_mut(&mut self) -> &mut T {
        let value = self.cell.get_mut(self.source.as_ref(), part_named::<T>);
        self.source = None;
        value
    }

    pub fn is_decoded(&self) -> bool {
        self.cell.is_decoded()
    }
}

impl<T: Clone> Clone for Lazy<T> {
    fn clone(&self) -> Lazy<T> {
        Lazy { cell: self.cell.clone(), source: self.source.clone() }
    }
}

impl<T: serde::de::DeserializeOwned + Serialize + PartName + Default> Default for Lazy<T> {
    fn default() -> Lazy<T> {
        Lazy::new(T::default())
    }
}

impl<T: serde::de::DeserializeOwned + Serialize + PartName + PartialEq> PartialEq for Lazy<T> {
    fn eq(&self, other: &Lazy<T>) -> bool {
        self.get() == other.get()
    }
}
impl<T: serde::de::DeserializeOwned + Serialize + PartName + Eq> Eq for Lazy<T> {}

impl<T: serde::de::DeserializeOwned + Serialize + PartName + std::fmt::Debug> std::fmt::Debug for Lazy<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl<T: serde::de::DeserializeOwned + Serialize + PartName> Serialize for Lazy<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            return self.get().serialize(serializer);
        }
        self.cell.write_bytes(serializer, self.source.as_ref(), part_named::<T>)
    }
}

impl<'de, T: serde::de::DeserializeOwned + Serialize + PartName> Deserialize<'de> for Lazy<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Lazy<T>, D::Error> {
        if deserializer.is_human_readable() {
            return Ok(Lazy::new(T::deserialize(deserializer)?));
        }
        let source = LOADING.with(|l| l.borrow().clone());
        let cell = Cell::read_bytes(EncodedBytes::deserialize(deserializer)?, source.as_ref())?;
        let source = source.filter(|_| !cell.is_decoded());
        Ok(Lazy { cell, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::projection::BoundCard;

    fn household(village: &str) -> Household {
        Household {
            village: Sym::new(village),
            head_name_masked: "张*".into(),
            registered_seq: 1,
            registered_at: crate::date::Date::parse("2020-01-01").unwrap(),
            statuses: Vec::new(),
            members: BTreeMap::new(),
            membership_log: Vec::new(),
            card: BoundCard {
                card_digest: Sym::new("card"),
                card_masked: "6228****".into(),
                bank: Sym::new("bank"),
                seq: 1,
            },
            notices: BTreeMap::new(),
            payouts: Vec::new(),
        }
    }

    #[test]
    fn many_finds_exactly_the_ids_asked_whether_they_sit_together_or_apart() {
        // Goal: `many` returns, in id order, exactly the households of the ids that exist — ids that sit
        // together (the walk), ids spread so thin among others that the walk gives up (the searches),
        // ids no household has, and none.
        let mut households = Households::default();
        for n in 0..1_000 {
            households.insert(Sym::new(&format!("h{n:04}")), household(if n % 2 == 0 { "even" } else { "odd" }));
        }
        let cases: Vec<Vec<String>> = vec![
            (100..200).map(|n| format!("h{n:04}")).collect(),
            (0..1_000).step_by(97).map(|n| format!("h{n:04}")).collect(),
            ["h0005", "h0005x", "h0006", "h9999", "zz"].iter().map(|s| s.to_string()).collect(),
            ["a", "h0000"].iter().map(|s| s.to_string()).collect(),
            Vec::new(),
        ];
        for ids in cases {
            let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
            let found: Vec<&str> = households.many(&ids).into_iter().map(|(id, _)| id.as_str()).collect();
            let want: Vec<&str> = ids.iter().copied().filter(|id| households.get(id).is_some()).collect();
            assert_eq!(found, want, "{ids:?}");
        }
    }
}
