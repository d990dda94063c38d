//! Interned strings (`Sym`) for the projections' most repeated fields:
//! household ids, person and card digests, and the office, program and
//! village names that every payout and household repeats.
//!
//! At province scale these strings are repeated millions of times (the
//! 10-million-event province of BENCHMARKS.md holds 9.6 M payouts and
//! 1.8 M distinct ids, digests and names; each household id appears in five
//! maps). As `String`s they cost one heap allocation per use in memory
//! and their full text per use in the snapshot; as `Sym`s they cost a
//! pointer, and the snapshot writes each text once in a symbol table and
//! then a small index per use (see `with_writing_table`).
//!
//! Limits: a text is never freed (it is leaked). Texts made by `Sym::new`
//! are kept once in a process-wide set; a snapshot's symbol table is copied
//! whole into one leaked buffer at each load (`table_of`: no per-text
//! lookup, which made a 10 M-event reopen ~1 s slower), so a text can exist
//! twice — from the table, and again once a new event names it — and each
//! load of a snapshot in the same process keeps its table's texts
//! (~100 MB at 10 M events). This grows with the distinct ids, digests and
//! names of the ledgers a process folds and loads, which the projections
//! keep for the ledger's life anyway; a server loads its snapshot once per
//! start (and again only after a failed write). Only accepted events are
//! folded, so only texts that passed validation are kept.
//!
//! Serialisation: human-readable formats (JSON) see a plain string. Binary
//! formats (postcard) see a plain string too, unless a symbol table is active
//! on the thread (the snapshot's encode and decode set one), in which case a
//! `Sym` is a `u32` index into that table.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

/// An interned string: `Copy`, compared and ordered by its text (equal
/// pointers are equal at once).
#[derive(Clone, Copy)]
pub struct Sym(&'static str);

fn interned() -> &'static Mutex<HashSet<&'static str>> {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    SET.get_or_init(|| Mutex::new(HashSet::new()))
}

impl Sym {
    /// The interned copy of `text` (interning it on first sight).
    pub fn new(text: &str) -> Sym {
        // A poisoned lock still guards a consistent set: insertion is the only write.
        let mut set = interned().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(existing) = set.get(text) {
            return Sym(existing);
        }
        let leaked: &'static str = Box::leak(text.to_owned().into_boxed_str());
        set.insert(leaked);
        Sym(leaked)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }
}

impl std::ops::Deref for Sym {
    type Target = str;
    fn deref(&self) -> &str {
        self.0
    }
}

impl AsRef<str> for Sym {
    fn as_ref(&self) -> &str {
        self.0
    }
}

impl std::borrow::Borrow<str> for Sym {
    fn borrow(&self) -> &str {
        self.0
    }
}

impl PartialEq for Sym {
    fn eq(&self, other: &Sym) -> bool {
        // `Sym::new` hands out one pointer per text, but a snapshot's table
        // (`table_of`) has its own copies: the same pointer is equal at
        // once, else the texts decide.
        std::ptr::eq(self.0, other.0) || self.0 == other.0
    }
}
impl Eq for Sym {}

impl PartialEq<str> for Sym {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}
impl PartialEq<&str> for Sym {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}
impl PartialEq<String> for Sym {
    fn eq(&self, other: &String) -> bool {
        self.0 == other.as_str()
    }
}
impl PartialEq<Sym> for str {
    fn eq(&self, other: &Sym) -> bool {
        self == other.0
    }
}
impl PartialEq<Sym> for &str {
    fn eq(&self, other: &Sym) -> bool {
        *self == other.0
    }
}

impl PartialOrd for Sym {
    fn partial_cmp(&self, other: &Sym) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Sym {
    fn cmp(&self, other: &Sym) -> std::cmp::Ordering {
        self.0.cmp(other.0)
    }
}

impl std::hash::Hash for Sym {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}

impl std::fmt::Display for Sym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::fmt::Debug for Sym {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl From<&str> for Sym {
    fn from(text: &str) -> Sym {
        Sym::new(text)
    }
}

enum Table {
    /// `seed`: the table this one started as a copy of, if any.
    Writing {
        index: HashMap<&'static str, u32>,
        texts: Vec<&'static str>,
        seed: Option<Arc<[Sym]>>,
    },
    Reading(Arc<[Sym]>),
}

thread_local! {
    static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
}

/// Makes `table` the thread's table until dropped (even by a panic), then
/// puts back the one it replaced, so calls may nest.
struct Active {
    previous: Option<Option<Table>>,
}

impl Active {
    fn set(table: Table) -> Active {
        Active { previous: Some(TABLE.with(|t| t.borrow_mut().replace(table))) }
    }

    /// Ends the table's time early, returning it.
    fn finish(mut self) -> Option<Table> {
        let previous = self.previous.take().flatten();
        TABLE.with(|t| std::mem::replace(&mut *t.borrow_mut(), previous))
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(previous) = self.previous.take() {
            TABLE.with(|t| *t.borrow_mut() = previous);
        }
    }
}

/// Runs `encode` with a writing table active on this thread: every `Sym`
/// it serialises in a binary format becomes an index. Returns its result and
/// the table's texts, by index, to be written before the body.
pub fn with_writing_table<T>(encode: impl FnOnce() -> T) -> (T, Vec<&'static str>) {
    with_writing_table_seeded(None, encode)
}

/// As `with_writing_table`, with the table starting as a copy of `seed`
/// (same texts at the same indices), so bytes encoded with `seed` as their
/// table can be copied into what `encode` writes
/// (`writing_table_extends`).
pub fn with_writing_table_seeded<T>(seed: Option<&Arc<[Sym]>>, encode: impl FnOnce() -> T) -> (T, Vec<&'static str>) {
    let texts: Vec<&'static str> = seed.map_or_else(Vec::new, |seed| seed.iter().map(|s| s.as_str()).collect());
    let mut index = HashMap::with_capacity(texts.len());
    for (i, text) in texts.iter().enumerate() {
        index.entry(*text).or_insert(u32::try_from(i).expect("fewer than 2^32 distinct symbols"));
    }
    let active = Active::set(Table::Writing { index, texts, seed: seed.cloned() });
    let result = encode();
    let texts = match active.finish() {
        Some(Table::Writing { texts, .. }) => texts,
        _ => Vec::new(),
    };
    (result, texts)
}

/// Whether the thread's writing table started as a copy of `table`.
pub fn writing_table_extends(table: &Arc<[Sym]>) -> bool {
    TABLE.with(|t| matches!(&*t.borrow(), Some(Table::Writing { seed: Some(seed), .. }) if Arc::ptr_eq(seed, table)))
}

/// The symbols of `texts`, by index: a reading table. The texts are copied
/// into one leaked buffer and not looked up in (or added to) the interned
/// set: a 10 M-event snapshot's table has 1.8 M texts, and interning them one
/// by one (a lock, a hash, an allocation each) was ~1 s of its reopen. So a
/// text may exist twice — once from a table, once interned by `Sym::new` —
/// which equality allows for (it compares pointers, then texts).
pub fn table_of<S: AsRef<str>>(texts: &[S]) -> Arc<[Sym]> {
    let mut joined = String::with_capacity(texts.iter().map(|t| t.as_ref().len()).sum());
    for text in texts {
        joined.push_str(text.as_ref());
    }
    let joined: &'static str = Box::leak(joined.into_boxed_str());
    let mut at = 0;
    texts
        .iter()
        .map(|text| {
            let end = at + text.as_ref().len();
            let sym = Sym(&joined[at..end]);
            at = end;
            sym
        })
        .collect()
}

/// `deserialize_with` for large hash maps: reserved for all the entries the
/// input announces (up to 2^24) instead of serde's cautious start and
/// repeated doubling and rehashing.
pub fn reserved_hash_map<'de, D, K, V>(deserializer: D) -> Result<HashMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Eq + std::hash::Hash,
    V: Deserialize<'de>,
{
    struct Reserved<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + Eq + std::hash::Hash, V: Deserialize<'de>> serde::de::Visitor<'de> for Reserved<K, V> {
        type Value = HashMap<K, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries = HashMap::with_capacity(map.size_hint().unwrap_or(0).min(1 << 24));
            while let Some((key, value)) = map.next_entry::<K, V>()? {
                entries.insert(key, value);
            }
            Ok(entries)
        }
    }
    deserializer.deserialize_map(Reserved(std::marker::PhantomData))
}

/// `deserialize_with` for large maps written in key order (the snapshot's
/// symbol-keyed maps): collected, then built in one pass, instead of a tree
/// descent with string comparisons per entry (at 10 M events the person
/// groups alone are 1.09 M entries). A repeated key is an error; keys out of
/// order are put in order.
pub fn sorted_map<'de, D, K, V>(deserializer: D) -> Result<std::collections::BTreeMap<K, V>, D::Error>
where
    D: Deserializer<'de>,
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
{
    struct SortedMap<K, V>(std::marker::PhantomData<(K, V)>);
    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de> for SortedMap<K, V> {
        type Value = std::collections::BTreeMap<K, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map in key order")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut entries: Vec<(K, V)> = Vec::with_capacity(map.size_hint().unwrap_or(0).min(1 << 20));
            while let Some(entry) = map.next_entry::<K, V>()? {
                entries.push(entry);
            }
            // `from_iter` sorts (one comparison per entry for sorted input:
            // it finds a single run; no second check here, as each
            // comparison of two symbols' texts is a cache miss at this size)
            // and keeps the last of equal keys, which is how a repeat shows.
            let written = entries.len();
            let built: Self::Value = entries.into_iter().collect();
            if built.len() != written {
                return Err(serde::de::Error::custom("a map's key is repeated"));
            }
            Ok(built)
        }
    }
    deserializer.deserialize_map(SortedMap(std::marker::PhantomData))
}

/// Runs `decode` with a reading table of `texts` active on this thread: every
/// `Sym` it deserialises from a binary format is read as an index into it.
pub fn with_reading_table<T>(texts: &[String], decode: impl FnOnce() -> T) -> T {
    with_table(&table_of(texts), decode)
}

/// Runs `decode` with `table` as the thread's reading table.
pub fn with_table<T>(table: &Arc<[Sym]>, decode: impl FnOnce() -> T) -> T {
    let _active = Active::set(Table::Reading(table.clone()));
    decode()
}

impl Serialize for Sym {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            let index = TABLE.with(|t| match &mut *t.borrow_mut() {
                Some(Table::Writing { index, texts, .. }) => Some(*index.entry(self.0).or_insert_with(|| {
                    texts.push(self.0);
                    u32::try_from(texts.len() - 1).expect("fewer than 2^32 distinct symbols")
                })),
                _ => None,
            });
            if let Some(index) = index {
                return serializer.serialize_u32(index);
            }
        }
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for Sym {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Sym, D::Error> {
        if !deserializer.is_human_readable() {
            let reading = TABLE.with(|t| matches!(&*t.borrow(), Some(Table::Reading(_))));
            if reading {
                let index = u32::deserialize(deserializer)?;
                let found = TABLE.with(|t| match &*t.borrow() {
                    Some(Table::Reading(table)) => table.get(index as usize).copied(),
                    _ => None,
                });
                return found.ok_or_else(|| serde::de::Error::custom(format!("symbol {index} is not in the table")));
            }
        }
        // Borrowed where the format allows it, owned otherwise.
        let text = std::borrow::Cow::<'de, str>::deserialize(deserializer)?;
        Ok(Sym::new(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_are_one_symbol_and_order_is_the_texts() {
        let a = Sym::new(&String::from("county-01"));
        let b = Sym::new("county-01");
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
        assert_eq!(a, b);
        assert!(Sym::new("a-office") < Sym::new("b-office"));
        assert_eq!(a, "county-01");
        assert_eq!(format!("{a}"), "county-01");
    }

    #[test]
    fn json_sees_strings_and_binary_sees_a_table_only_when_one_is_active() {
        let values = vec![Sym::new("dibao"), Sym::new("industry"), Sym::new("dibao")];
        assert_eq!(serde_json::to_string(&values).unwrap(), r#"["dibao","industry","dibao"]"#);
        let plain = postcard::to_stdvec(&values).unwrap();
        assert_eq!(postcard::from_bytes::<Vec<Sym>>(&plain).unwrap(), values);
        let (tabled, texts) = with_writing_table(|| postcard::to_stdvec(&values).unwrap());
        assert_eq!(texts, vec!["dibao", "industry"]);
        assert!(tabled.len() < plain.len(), "indices are shorter than the texts");
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        let decoded = with_reading_table(&texts, || postcard::from_bytes::<Vec<Sym>>(&tabled).unwrap());
        assert_eq!(decoded, values);
        // An index outside the table is an error, not a panic.
        let short = vec!["dibao".to_string()];
        assert!(with_reading_table(&short, || postcard::from_bytes::<Vec<Sym>>(&tabled)).is_err());
        // The table is gone after each call.
        assert_eq!(postcard::from_bytes::<Vec<Sym>>(&plain).unwrap(), values);
        // Calls nest: the inner table is the inner call's alone.
        let (inner, outer_texts) = with_writing_table(|| {
            let _ = postcard::to_stdvec(&values[1]).unwrap();
            with_writing_table(|| postcard::to_stdvec(&values[0]).unwrap()).1
        });
        assert_eq!((inner, outer_texts), (vec!["dibao"], vec!["industry"]));
    }

    #[test]
    fn a_tables_copy_of_a_text_equals_the_interned_one_everywhere() {
        // Goal: `table_of` copies texts without interning them (reopen speed), so the same text can be
        // two pointers; equality, order, hashing and map lookups must not tell them apart.
        let interned = Sym::new("household-0042");
        let table = table_of(&["household-0042", "county-07"]);
        assert!(!std::ptr::eq(table[0].as_str(), interned.as_str()), "a copy, not the interned text");
        assert_eq!(table[0], interned);
        assert_eq!(table[0].cmp(&interned), std::cmp::Ordering::Equal);
        assert_ne!(table[1], interned);
        let mut map = std::collections::HashMap::new();
        map.insert(table[0], 1);
        assert_eq!(map.get(&interned), Some(&1));
        assert_eq!(map.get("household-0042"), Some(&1));
        let tree: std::collections::BTreeMap<Sym, u8> = [(interned, 2)].into_iter().collect();
        assert_eq!(tree.get(&table[0]), Some(&2));
    }

    #[test]
    fn sorted_maps_refuse_repeated_keys_and_order_the_rest() {
        // Goal: the one-pass map build never gives a map with shadowed entries: a snapshot with a
        // repeated key is unreadable (the ledger then replays); keys out of order still give the map
        // the entries say.
        #[derive(Deserialize)]
        struct Wrapped(#[serde(deserialize_with = "sorted_map")] std::collections::BTreeMap<u32, u8>);
        let encode = |pairs: &[(u32, u8)]| {
            // A map as postcard writes one: length, then key and value pairs.
            let mut bytes = postcard::to_stdvec(&(pairs.len() as u32)).unwrap();
            for pair in pairs {
                bytes.extend(postcard::to_stdvec(pair).unwrap());
            }
            bytes
        };
        let good = postcard::from_bytes::<Wrapped>(&encode(&[(1, 10), (5, 50)])).unwrap();
        assert_eq!(good.0.into_iter().collect::<Vec<_>>(), vec![(1, 10), (5, 50)]);
        let reordered = postcard::from_bytes::<Wrapped>(&encode(&[(5, 50), (1, 10)])).unwrap();
        assert_eq!(reordered.0.into_iter().collect::<Vec<_>>(), vec![(1, 10), (5, 50)]);
        assert!(postcard::from_bytes::<Wrapped>(&encode(&[(5, 50), (5, 51)])).is_err());
    }
}
