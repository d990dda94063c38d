//! A hash table on disk, for `verify`'s index of event ids: 32-byte keys
//! (SHA-256 digests) to 64-byte values, in two unnamed scratch files.
//!
//! Owns: keeping what a verifier must remember of every event off the heap,
//! so a verifier's memory does not grow with the chain's length (issue 6:
//! "memory flat in the ledger's length").
//!
//! Must never: hold more than a page in memory besides the bucket being
//! split (a few pages: keys must be uniform and unpredictable to whoever
//! chose the ids, so `verify` salts them), answer after a failed read or
//! write (`failed`), or outlive its verifier (the files are unnamed: the
//! kernel frees them when the table is dropped, or when the process dies).
//!
//! Layout: linear hashing (Litwin, 1980). The table has `2^level + split`
//! buckets; bucket `b` is page `b` of the bucket file. A key's bucket is its
//! hash modulo `2^level`, or modulo `2^(level+1)` when that bucket has
//! already been split this round. A page holds `SLOTS_PER_PAGE` entries; a
//! full bucket chains overflow pages in the overflow file. When the table
//! passes `LOAD_PERCENT_MAX` of its slots, the next bucket in turn is split:
//! its entries are shared between itself and a new bucket at the end of the
//! file. So the table grows one page at a time and never rehashes as a
//! whole. Freed overflow pages are chained into a free list on disk.
//!
//! Each page: `count` (u16 LE), 2 spare bytes, `next` (u32 LE, overflow page
//! number, 0 for none), then `count` slots of key ‖ value. Overflow page `n`
//! (n ≥ 1) is at `(n − 1) · PAGE_BYTES` in the overflow file.
//!
//! Cost: a lookup reads one page (more only for an overflowing bucket), an
//! insert after a lookup of the same key writes one page (the page read by
//! the lookup is kept). The kernel's page cache does the rest.

use std::fs::File;
use std::os::unix::fs::FileExt as _;
use std::path::Path;

pub const KEY_BYTES: usize = 32;
pub const VALUE_BYTES: usize = 64;
const SLOT_BYTES: usize = KEY_BYTES + VALUE_BYTES;
/// One page: the unit of every read and write (the kernel's page size).
pub const PAGE_BYTES: usize = 4096;
const HEADER_BYTES: usize = 8;
pub const SLOTS_PER_PAGE: usize = (PAGE_BYTES - HEADER_BYTES) / SLOT_BYTES;
/// Split a bucket when the entries exceed this share of the buckets' slots:
/// high enough that pages are mostly full, low enough that few buckets
/// overflow (at 80%, a bucket holds 33.6 of 42 entries on average).
const LOAD_PERCENT_MAX: u64 = 80;
/// Bucket numbers are u64 page numbers; overflow pages are numbered in u32
/// (2^32 pages of 16 TiB is far past any chain a verifier reads).
const OVERFLOW_PAGES_MAX: u64 = u32::MAX as u64;

pub type Key = [u8; KEY_BYTES];
pub type Value = [u8; VALUE_BYTES];

/// A table of keys to values on disk. Each key is inserted at most once (the
/// caller looks it up first); lookups of absent keys cost one page read.
pub struct DiskTable {
    buckets: File,
    overflow: File,
    /// Buckets are `2^level + split`.
    level: u32,
    split: u64,
    entries: u64,
    /// Overflow pages ever allocated (free or in use).
    overflow_pages: u64,
    /// First page of the free list; 0 for none.
    free_overflow: u32,
    /// The last bucket page read or written: an insert after a lookup of
    /// the same key finds its page here instead of reading it again.
    cached: Option<(u64, Box<Page>)>,
    /// An earlier read or write failed. A split that failed half way can
    /// leave a bucket linked to pages another bucket now uses, so after any
    /// failure every call fails rather than answer from a damaged table.
    failed: bool,
}

/// A page's bytes.
#[derive(Clone)]
struct Page([u8; PAGE_BYTES]);

impl Page {
    fn empty() -> Box<Page> {
        Box::new(Page([0; PAGE_BYTES]))
    }

    fn count(&self) -> usize {
        usize::from(u16::from_le_bytes([self.0[0], self.0[1]]))
    }

    fn next(&self) -> u32 {
        u32::from_le_bytes(self.0[4..8].try_into().expect("4 bytes"))
    }

    fn set_count(&mut self, count: usize) {
        assert!(count <= SLOTS_PER_PAGE);
        self.0[0..2].copy_from_slice(&(count as u16).to_le_bytes());
    }

    fn set_next(&mut self, next: u32) {
        self.0[4..8].copy_from_slice(&next.to_le_bytes());
    }

    fn slot(&self, at: usize) -> &[u8] {
        let start = HEADER_BYTES + at * SLOT_BYTES;
        &self.0[start..start + SLOT_BYTES]
    }

    fn find(&self, key: &Key) -> Option<Value> {
        // A damaged count (only possible if the scratch file was changed under
        // us) reads no further than the page's slots.
        (0..self.count().min(SLOTS_PER_PAGE))
            .map(|at| self.slot(at))
            .find(|slot| slot[..KEY_BYTES] == key[..])
            .map(|slot| slot[KEY_BYTES..].try_into().expect("value bytes"))
    }

    fn push(&mut self, key: &Key, value: &Value) {
        let count = self.count();
        assert!(count < SLOTS_PER_PAGE, "push onto a full page");
        let start = HEADER_BYTES + count * SLOT_BYTES;
        self.0[start..start + KEY_BYTES].copy_from_slice(key);
        self.0[start + KEY_BYTES..start + SLOT_BYTES].copy_from_slice(value);
        self.set_count(count + 1);
    }

    fn entries(&self) -> impl Iterator<Item = (Key, Value)> + '_ {
        (0..self.count().min(SLOTS_PER_PAGE)).map(|at| {
            let slot = self.slot(at);
            (slot[..KEY_BYTES].try_into().expect("key bytes"), slot[KEY_BYTES..].try_into().expect("value bytes"))
        })
    }
}

/// Where a page lives.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PageAt {
    Bucket(u64),
    Overflow(u32),
}

fn hash_of(key: &Key) -> u64 {
    // Keys are SHA-256 digests: their first bytes are already uniform.
    u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
}

impl DiskTable {
    /// An empty table whose two files are unnamed temporary files in `dir`.
    pub fn create_in(dir: &Path) -> std::io::Result<DiskTable> {
        let buckets = tempfile::tempfile_in(dir)?;
        let overflow = tempfile::tempfile_in(dir)?;
        let table = DiskTable {
            buckets,
            overflow,
            level: 0,
            split: 0,
            entries: 0,
            overflow_pages: 0,
            free_overflow: 0,
            cached: None,
            failed: false,
        };
        table.write_page(PageAt::Bucket(0), &Page::empty())?;
        Ok(table)
    }

    pub fn len(&self) -> u64 {
        self.entries
    }

    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    fn bucket_count(&self) -> u64 {
        (1u64 << self.level) + self.split
    }

    fn bucket_of(&self, key: &Key) -> u64 {
        let hash = hash_of(key);
        let bucket = hash & ((1u64 << self.level) - 1);
        if bucket < self.split {
            hash & ((1u64 << (self.level + 1)) - 1)
        } else {
            bucket
        }
    }

    fn read_page(&self, at: PageAt) -> std::io::Result<Box<Page>> {
        let mut page = Page::empty();
        match at {
            PageAt::Bucket(n) => self.buckets.read_exact_at(&mut page.0, n * PAGE_BYTES as u64)?,
            PageAt::Overflow(n) => {
                assert!(n >= 1);
                self.overflow.read_exact_at(&mut page.0, u64::from(n - 1) * PAGE_BYTES as u64)?
            }
        }
        Ok(page)
    }

    fn write_page(&self, at: PageAt, page: &Page) -> std::io::Result<()> {
        match at {
            PageAt::Bucket(n) => self.buckets.write_all_at(&page.0, n * PAGE_BYTES as u64),
            PageAt::Overflow(n) => {
                assert!(n >= 1);
                self.overflow.write_all_at(&page.0, u64::from(n - 1) * PAGE_BYTES as u64)
            }
        }
    }

    /// Makes `bucket`'s first page the cached one, reading it unless it
    /// already is, and lends it: lookups and inserts work on it in place.
    fn cached_bucket(&mut self, bucket: u64) -> std::io::Result<&mut Page> {
        if !matches!(&self.cached, Some((cached, _)) if *cached == bucket) {
            self.cached = None;
            self.cached = Some((bucket, self.read_page(PageAt::Bucket(bucket))?));
        }
        Ok(&mut self.cached.as_mut().expect("cached above").1)
    }

    /// Writes the cached bucket page back (after a change to it in place).
    fn write_cached_bucket(&mut self) -> std::io::Result<()> {
        let (bucket, page) = self.cached.as_ref().expect("a bucket page is cached");
        let written = self.write_page(PageAt::Bucket(*bucket), page);
        if written.is_err() {
            // What is on disk is unknown now (and the table is not used again: `failed`).
            self.cached = None;
        }
        written
    }

    fn write_bucket_page(&mut self, bucket: u64, page: Box<Page>) -> std::io::Result<()> {
        self.cached = Some((bucket, page));
        self.write_cached_bucket()
    }

    fn usable(&self) -> std::io::Result<()> {
        if self.failed {
            return Err(std::io::Error::other("the id table failed earlier and is not used again"));
        }
        Ok(())
    }

    /// The value stored for `key`, if any.
    pub fn get(&mut self, key: &Key) -> std::io::Result<Option<Value>> {
        self.usable()?;
        let found = self.find(key);
        self.failed |= found.is_err();
        found
    }

    fn find(&mut self, key: &Key) -> std::io::Result<Option<Value>> {
        let first = self.cached_bucket(self.bucket_of(key))?;
        if let Some(value) = first.find(key) {
            return Ok(Some(value));
        }
        let mut next = first.next();
        while next != 0 {
            let page = self.read_page(PageAt::Overflow(next))?;
            if let Some(value) = page.find(key) {
                return Ok(Some(value));
            }
            next = page.next();
        }
        Ok(None)
    }

    /// Stores `value` for `key`, which must not be in the table yet (the
    /// caller looked it up; a second insert would shadow nothing and waste a
    /// slot, so it is a broken invariant, checked in debug builds).
    pub fn insert(&mut self, key: &Key, value: &Value) -> std::io::Result<()> {
        self.usable()?;
        debug_assert!(self.find(key)?.is_none(), "a key is inserted once");
        let stored = self.store(key, value);
        self.failed |= stored.is_err();
        stored
    }

    /// Puts the entry in the first page of its bucket's chain with room,
    /// adding an overflow page at the end when every page is full; then
    /// splits the next bucket if the table is past its load.
    fn store(&mut self, key: &Key, value: &Value) -> std::io::Result<()> {
        let first = self.cached_bucket(self.bucket_of(key))?;
        if first.count() < SLOTS_PER_PAGE {
            first.push(key, value);
            self.write_cached_bucket()?;
        } else {
            let mut next = first.next();
            if next == 0 {
                let added = self.overflow_page_with(key, value)?;
                self.cached.as_mut().expect("the bucket's page is cached").1.set_next(added);
                self.write_cached_bucket()?;
            }
            while next != 0 {
                let mut page = self.read_page(PageAt::Overflow(next))?;
                if page.count() < SLOTS_PER_PAGE {
                    page.push(key, value);
                } else if page.next() == 0 {
                    page.set_next(self.overflow_page_with(key, value)?);
                } else {
                    next = page.next();
                    continue;
                }
                self.write_page(PageAt::Overflow(next), &page)?;
                break;
            }
        }
        self.entries += 1;
        let slots = self.bucket_count() * SLOTS_PER_PAGE as u64;
        if self.entries * 100 > slots * LOAD_PERCENT_MAX {
            self.split_next()?;
        }
        Ok(())
    }

    /// A new overflow page holding one entry; returns its number.
    fn overflow_page_with(&mut self, key: &Key, value: &Value) -> std::io::Result<u32> {
        let number = self.allocate_overflow()?;
        let mut page = Page::empty();
        page.push(key, value);
        self.write_page(PageAt::Overflow(number), &page)?;
        Ok(number)
    }

    fn allocate_overflow(&mut self) -> std::io::Result<u32> {
        if self.free_overflow != 0 {
            let page = self.free_overflow;
            self.free_overflow = self.read_page(PageAt::Overflow(page))?.next();
            return Ok(page);
        }
        if self.overflow_pages >= OVERFLOW_PAGES_MAX {
            return Err(std::io::Error::other("the id table's overflow file is full (2^32 pages)"));
        }
        self.overflow_pages += 1;
        Ok(self.overflow_pages as u32)
    }

    fn free_overflow_page(&mut self, page: u32) -> std::io::Result<()> {
        let mut freed = Page::empty();
        freed.set_next(self.free_overflow);
        self.write_page(PageAt::Overflow(page), &freed)?;
        self.free_overflow = page;
        Ok(())
    }

    /// Splits bucket `split` into itself and bucket `split + 2^level`: each
    /// entry goes where one more bit of its hash says.
    fn split_next(&mut self) -> std::io::Result<()> {
        let old = self.split;
        let new = old + (1u64 << self.level);
        let first = self.cached_bucket(old)?;
        let mut entries: Vec<(Key, Value)> = first.entries().collect();
        let mut next = first.next();
        while next != 0 {
            let page = self.read_page(PageAt::Overflow(next))?;
            entries.extend(page.entries());
            self.free_overflow_page(next)?;
            next = page.next();
        }
        let high_bit = 1u64 << self.level;
        let (moved, stayed): (Vec<_>, Vec<_>) = entries.into_iter().partition(|(key, _)| hash_of(key) & high_bit != 0);
        self.write_chain(new, &moved)?;
        self.write_chain(old, &stayed)?;
        self.split += 1;
        if self.split == 1u64 << self.level {
            self.level += 1;
            self.split = 0;
        }
        Ok(())
    }

    /// Writes a bucket afresh: its first page, then overflow pages as needed.
    fn write_chain(&mut self, bucket: u64, entries: &[(Key, Value)]) -> std::io::Result<()> {
        let mut pages: Vec<Box<Page>> = entries
            .chunks(SLOTS_PER_PAGE)
            .map(|part| {
                let mut page = Page::empty();
                part.iter().for_each(|(key, value)| page.push(key, value));
                page
            })
            .collect();
        if pages.is_empty() {
            pages.push(Page::empty());
        }
        // Overflow pages are written last to first, so each knows its successor.
        let mut next = 0u32;
        for mut page in pages.drain(1..).rev() {
            let at = self.allocate_overflow()?;
            page.set_next(next);
            self.write_page(PageAt::Overflow(at), &page)?;
            next = at;
        }
        let mut first = pages.pop().expect("one page");
        first.set_next(next);
        self.write_bucket_page(bucket, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest as _, Sha256};
    use std::collections::HashMap;

    fn key(n: u64) -> Key {
        Sha256::digest(n.to_le_bytes()).into()
    }

    fn value(n: u64) -> Value {
        let mut value = [0u8; VALUE_BYTES];
        value[..8].copy_from_slice(&n.to_le_bytes());
        value[56..].copy_from_slice(&(!n).to_le_bytes());
        value
    }

    #[test]
    fn holds_what_a_map_holds_through_splits_and_overflow() {
        // Goal: after every insert, through many splits and level changes,
        // every key inserted so far gives back its value and keys never
        // inserted give nothing, as a HashMap would.
        let dir = tempfile::tempdir().unwrap();
        let mut table = DiskTable::create_in(dir.path()).unwrap();
        let mut map = HashMap::new();
        for n in 0..20_000u64 {
            assert_eq!(table.get(&key(n)).unwrap(), None);
            table.insert(&key(n), &value(n)).unwrap();
            map.insert(key(n), value(n));
            if n % 997 == 0 {
                for m in 0..=n {
                    assert_eq!(table.get(&key(m)).unwrap().as_ref(), map.get(&key(m)), "key {m} after {n}");
                }
                assert_eq!(table.get(&key(n + 1_000_000)).unwrap(), None);
            }
        }
        assert_eq!(table.len(), 20_000);
        assert!(table.level >= 9, "the table grew: level {}", table.level);
    }

    #[test]
    fn colliding_hashes_overflow_and_split_apart() {
        // Goal: many keys whose hashes share their low bits (one bucket for a
        // long time) chain overflow pages, are all found, and overflow pages
        // freed by splits are reused instead of growing the file.
        let dir = tempfile::tempdir().unwrap();
        let mut table = DiskTable::create_in(dir.path()).unwrap();
        // Low 12 bits zero: the same bucket until the table has 4096 buckets.
        let crafted = |n: u64| -> Key {
            let mut key = key(n);
            let hash = hash_of(&key) & !0xfff;
            key[..8].copy_from_slice(&hash.to_le_bytes());
            key
        };
        for n in 0..3_000u64 {
            table.insert(&crafted(n), &value(n)).unwrap();
        }
        for n in 0..3_000u64 {
            assert_eq!(table.get(&crafted(n)).unwrap(), Some(value(n)), "crafted key {n}");
        }
        let allocated = table.overflow_pages;
        assert!(allocated >= 3_000 / SLOTS_PER_PAGE as u64 - 2, "one long chain: {allocated} overflow pages");
        // Ordinary keys now split buckets; the long chain's pages are freed and reused.
        for n in 10_000..30_000u64 {
            table.insert(&key(n), &value(n)).unwrap();
        }
        for n in (0..3_000u64).chain(10_000..30_000) {
            let k = if n < 3_000 { crafted(n) } else { key(n) };
            assert_eq!(table.get(&k).unwrap(), Some(value(n)), "key {n} after growth");
        }
        assert!(
            table.overflow_pages < allocated + 200,
            "freed pages reused: {} > {allocated} + 200",
            table.overflow_pages
        );
    }

    #[test]
    fn a_missing_scratch_directory_is_an_error() {
        // Goal: no table without its files, and the error says so (no panic).
        let dir = tempfile::tempdir().unwrap();
        assert!(DiskTable::create_in(&dir.path().join("absent")).is_err());
    }
}
