//! RFC 6962 / RFC 9162 Merkle tree over the ledger's entry hashes (SPEC §6).
//!
//! Owns: tree hashing (MTH), the append-side [`Frontier`] (compact range of
//! the right edge), building inclusion and consistency proofs from stored
//! complete subtrees, and verifying those proofs.
//!
//! Boundary: does no I/O and never panics on input. Nodes are read through
//! [`NodeSource`], which the store (or [`MemoryTree`]) implements.
//!
//! Leaves arrive as leaf hashes: the entry hash of SPEC §5 already starts
//! with [`LEAF_HASH_PREFIX`], so this module never re-hashes a leaf.
//! [`leaf_hash`] exists for callers with raw leaf data (RFC 6962 vectors).
//!
//! Node addressing: node `(level, index)` is the root of the perfect subtree
//! over leaves `[index·2^level, (index+1)·2^level)`; level 0 holds the leaf
//! hashes. Only such complete subtrees are ever stored. Any range that the
//! RFC recursion visits decomposes into at most 64 of them, one per set bit
//! of its width, so roots and proofs cost O(log n) node reads.

use sha2::{Digest, Sha256};
use std::fmt;

/// RFC 6962 §2.1 domain separation: a leaf hash is SHA-256(0x00 || data).
pub const LEAF_HASH_PREFIX: u8 = 0x00;
/// RFC 6962 §2.1 domain separation: a node hash is SHA-256(0x01 || l || r).
pub const NODE_HASH_PREFIX: u8 = 0x01;
/// SHA-256 output size.
pub const HASH_BYTES: usize = 32;
/// Size of the big-endian tree size that starts [`Frontier::to_bytes`].
pub const FRONTIER_SIZE_BYTES: usize = 8;

/// A SHA-256 digest: a leaf hash, a node hash or a tree root.
pub type Hash = [u8; HASH_BYTES];

/// The leaf hash of raw leaf data, RFC 6962 §2.1: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_HASH_PREFIX]);
    hasher.update(data);
    hasher.finalize().into()
}

/// An interior node hash, RFC 6962 §2.1: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_HASH_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree, RFC 6962 §2.1: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// A complete (perfect, aligned) subtree root, as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// Height above the leaves; 0 is a leaf hash.
    pub level: u32,
    /// Position within the level: the node covers leaves
    /// `[index·2^level, (index+1)·2^level)`.
    pub index: u64,
    /// The subtree's Merkle tree hash.
    pub hash: Hash,
}

/// Read access to stored complete subtree roots.
pub trait NodeSource {
    /// Why a node could not be read (missing, store failure, …).
    type Error;

    /// The hash of node `(level, index)`; level 0 returns leaf hashes.
    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

impl<S: NodeSource + ?Sized> NodeSource for &S {
    type Error = S::Error;

    fn node(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        (**self).node(level, index)
    }
}

/// A node the source does not hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeMissing {
    /// Level of the missing node.
    pub level: u32,
    /// Index of the missing node within its level.
    pub index: u64,
}

impl fmt::Display for NodeMissing {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "node ({}, {}) is missing", self.level, self.index)
    }
}

impl std::error::Error for NodeMissing {}

/// The largest power of two strictly less than `width` (RFC 9162 §2.1.1's
/// split point `k`). Requires `width >= 2`.
fn split_point(width: u64) -> u64 {
    assert!(width >= 2, "a split needs at least two leaves");
    1 << (63 - (width - 1).leading_zeros())
}

/// MTH of leaves `[start, end)` for a range the RFC recursion visits: its
/// start is a multiple of the largest power of two not above its width, so
/// it is a run of perfect subtrees of strictly decreasing size. Reads one
/// node per set bit of the width and folds them right to left.
fn range_root<S: NodeSource + ?Sized>(start: u64, end: u64, source: &S) -> Result<Hash, S::Error> {
    assert!(start < end, "a subtree covers at least one leaf");
    let mut remaining = end - start;
    let mut position = end;
    let mut root: Option<Hash> = None;
    while remaining != 0 {
        let level = remaining.trailing_zeros();
        let width = 1u64 << level;
        position -= width;
        remaining -= width;
        assert!(position % width == 0, "perfect subtrees are aligned");
        let subtree = source.node(level, position >> level)?;
        root = Some(match root {
            None => subtree,
            Some(right) => node_hash(&subtree, &right),
        });
    }
    Ok(root.unwrap_or_else(empty_root))
}

/// Reads the one stored node of the perfect subtree of `width` leaves at `start`.
fn perfect_root<S: NodeSource + ?Sized>(start: u64, width: u64, source: &S) -> Result<Hash, S::Error> {
    assert!(width.is_power_of_two() && start % width == 0, "subtree is perfect");
    let level = width.trailing_zeros();
    source.node(level, start >> level)
}

/// MTH(D[0:size]), RFC 9162 §2.1.1, from at most 64 stored nodes.
pub fn root<S: NodeSource + ?Sized>(size: u64, source: &S) -> Result<Hash, S::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_root(0, size, source)
}

/// Why an inclusion proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InclusionProofError<E> {
    /// The leaf index is not below the tree size (this includes size 0).
    IndexOutOfRange {
        /// Requested leaf index.
        index: u64,
        /// Requested tree size.
        size: u64,
    },
    /// The node source failed.
    Source(E),
}

impl<E: fmt::Display> fmt::Display for InclusionProofError<E> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IndexOutOfRange { index, size } => {
                write!(formatter, "leaf index {index} is not below tree size {size}")
            }
            Self::Source(error) => write!(formatter, "reading a tree node: {error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for InclusionProofError<E> {}

/// PATH(index, D[0:size]), RFC 9162 §2.1.3.1, deepest sibling first.
///
/// Walks the RFC recursion from the root down. Once the walk enters a left
/// child it stays inside a perfect subtree, so only one sibling (the first
/// right remainder) costs more than one node read: O(log size) reads.
pub fn inclusion_proof<S: NodeSource + ?Sized>(
    index: u64,
    size: u64,
    source: &S,
) -> Result<Vec<Hash>, InclusionProofError<S::Error>> {
    if index >= size {
        return Err(InclusionProofError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    let (mut start, mut end) = (0u64, size);
    while end - start > 1 {
        let split = start + split_point(end - start);
        let sibling = if index < split {
            let sibling = range_root(split, end, source);
            end = split;
            sibling
        } else {
            let sibling = perfect_root(start, split - start, source);
            start = split;
            sibling
        };
        proof.push(sibling.map_err(InclusionProofError::Source)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Why a consistency proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsistencyProofError<E> {
    /// `from` is 0 or greater than `to`; RFC 9162 §2.1.4 defines proofs for
    /// 0 < from ≤ to only (from = to gives the empty proof).
    InvalidSizes {
        /// Size of the older tree.
        from: u64,
        /// Size of the newer tree.
        to: u64,
    },
    /// The node source failed.
    Source(E),
}

impl<E: fmt::Display> fmt::Display for ConsistencyProofError<E> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSizes { from, to } => {
                write!(formatter, "no consistency proof exists from size {from} to size {to}")
            }
            Self::Source(error) => write!(formatter, "reading a tree node: {error}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for ConsistencyProofError<E> {}

/// PROOF(from, D[0:to]) = SUBPROOF(from, D[0:to], true), RFC 9162 §2.1.4.1,
/// in the RFC's order (deepest first). O(log to) node reads, as for
/// [`inclusion_proof`].
pub fn consistency_proof<S: NodeSource + ?Sized>(
    from: u64,
    to: u64,
    source: &S,
) -> Result<Vec<Hash>, ConsistencyProofError<S::Error>> {
    if from == 0 || from > to {
        return Err(ConsistencyProofError::InvalidSizes { from, to });
    }
    let mut proof = Vec::new();
    let (mut start, mut end) = (0u64, to);
    let mut from_is_whole_subtree = true;
    while from != end {
        let split = start + split_point(end - start);
        let sibling = if from <= split {
            let sibling = range_root(split, end, source);
            end = split;
            sibling
        } else {
            let sibling = perfect_root(start, split - start, source);
            start = split;
            from_is_whole_subtree = false;
            sibling
        };
        proof.push(sibling.map_err(ConsistencyProofError::Source)?);
    }
    if !from_is_whole_subtree {
        let old_subtree = range_root(start, end, source);
        proof.push(old_subtree.map_err(ConsistencyProofError::Source)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Why an inclusion proof did not verify (RFC 9162 §2.1.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InclusionError {
    /// The leaf index is not below the tree size (this includes size 0).
    IndexOutOfRange {
        /// Claimed leaf index.
        index: u64,
        /// Claimed tree size.
        size: u64,
    },
    /// The proof has the wrong number of hashes for this index and size.
    WrongProofLength {
        /// Hashes an inclusion proof for this index and size has.
        expected: usize,
        /// Hashes the given proof has.
        actual: usize,
    },
    /// The proof leads to a different root.
    IncorrectRoot,
}

impl fmt::Display for InclusionError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::IndexOutOfRange { index, size } => {
                write!(formatter, "leaf index {index} is not below tree size {size}")
            }
            Self::WrongProofLength { expected, actual } => {
                write!(formatter, "inclusion proof has {actual} hashes, expected {expected}")
            }
            Self::IncorrectRoot => write!(formatter, "inclusion proof leads to a different root"),
        }
    }
}

impl std::error::Error for InclusionError {}

/// Number of bits needed to write `value` (0 for 0).
fn bit_length(value: u64) -> u32 {
    64 - value.leading_zeros()
}

/// Hashes in an inclusion proof for leaf `index` in a tree of `last + 1`
/// leaves: the levels where the leaf's path and the right edge have split
/// (inner), plus one per left-hand perfect subtree above them (border).
fn inclusion_proof_length(index: u64, last: u64) -> usize {
    let inner = bit_length(index ^ last);
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Verifies that `leaf` is leaf `index` of the tree of `size` leaves whose
/// root is `root`, following RFC 9162 §2.1.3.2 step by step (`node_index`
/// and `last_node_index` are the RFC's `fn` and `sn`).
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), InclusionError> {
    // Step 1.
    if index >= size {
        return Err(InclusionError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_length(index, size - 1);
    if proof.len() != expected {
        return Err(InclusionError::WrongProofLength { expected, actual: proof.len() });
    }
    // Steps 2 and 3.
    let (mut node_index, mut last_node_index) = (index, size - 1);
    let mut computed = *leaf;
    // Step 4.
    for sibling in proof {
        if last_node_index == 0 {
            return Err(InclusionError::WrongProofLength { expected, actual: proof.len() });
        }
        if node_index & 1 == 1 || node_index == last_node_index {
            computed = node_hash(sibling, &computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_node_index >>= 1;
            }
        } else {
            computed = node_hash(&computed, sibling);
        }
        node_index >>= 1;
        last_node_index >>= 1;
    }
    // Step 5.
    if last_node_index != 0 {
        return Err(InclusionError::WrongProofLength { expected, actual: proof.len() });
    }
    if computed != *root {
        return Err(InclusionError::IncorrectRoot);
    }
    Ok(())
}

/// Why a consistency proof did not verify (RFC 9162 §2.1.4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsistencyError {
    /// `from` is 0 or greater than `to`.
    InvalidSizes {
        /// Claimed size of the older tree.
        from: u64,
        /// Claimed size of the newer tree.
        to: u64,
    },
    /// The proof has the wrong number of hashes for these sizes.
    WrongProofLength {
        /// Hashes a consistency proof for these sizes has.
        expected: usize,
        /// Hashes the given proof has.
        actual: usize,
    },
    /// Equal sizes were given with different roots.
    RootsDifferAtSameSize,
    /// The proof does not lead to the older root.
    IncorrectFromRoot,
    /// The proof does not lead to the newer root.
    IncorrectToRoot,
}

impl fmt::Display for ConsistencyError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidSizes { from, to } => {
                write!(formatter, "no consistency proof exists from size {from} to size {to}")
            }
            Self::WrongProofLength { expected, actual } => {
                write!(formatter, "consistency proof has {actual} hashes, expected {expected}")
            }
            Self::RootsDifferAtSameSize => {
                write!(formatter, "two trees of one size have different roots")
            }
            Self::IncorrectFromRoot => write!(formatter, "consistency proof does not lead to the older root"),
            Self::IncorrectToRoot => write!(formatter, "consistency proof does not lead to the newer root"),
        }
    }
}

impl std::error::Error for ConsistencyError {}

/// Hashes in a consistency proof for 0 < from < to. Below the largest
/// perfect subtree the two trees share (level `shared`), this is an
/// inclusion proof of the old tree's last node in the new tree, plus that
/// node itself when it is not the whole old tree.
fn consistency_proof_length(from: u64, to: u64) -> usize {
    let shared = from.trailing_zeros();
    let index = (from - 1) >> shared;
    let last = (to - 1) >> shared;
    let seed = usize::from(index != 0);
    seed + inclusion_proof_length(index, last)
}

/// Verifies that the tree of `to` leaves with root `to_root` extends the
/// tree of `from` leaves with root `from_root`, following RFC 9162 §2.1.4.2
/// step by step (`node_index` and `last_node_index` are the RFC's `fn` and
/// `sn`; `from_computed` and `to_computed` are `fr` and `sr`).
///
/// Equal sizes need an empty proof and equal roots; size 0 is rejected
/// (sunledger never signs the empty tree).
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ConsistencyError> {
    if from == 0 || from > to {
        return Err(ConsistencyError::InvalidSizes { from, to });
    }
    if from == to {
        return verify_same_size(from_root, to_root, proof);
    }
    // Step 1, checked exactly rather than only for emptiness.
    let expected = consistency_proof_length(from, to);
    let wrong_length = ConsistencyError::WrongProofLength { expected, actual: proof.len() };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Step 2: a power-of-two old tree is itself a node of the new tree.
    let seed: &[Hash] = if from.is_power_of_two() { std::slice::from_ref(from_root) } else { &[] };
    let mut path = seed.iter().chain(proof);
    // Steps 3 and 4.
    let (mut node_index, mut last_node_index) = (from - 1, to - 1);
    while node_index & 1 == 1 {
        node_index >>= 1;
        last_node_index >>= 1;
    }
    // Step 5.
    let Some(first) = path.next() else {
        return Err(wrong_length);
    };
    let (mut from_computed, mut to_computed) = (*first, *first);
    // Step 6.
    for sibling in path {
        if last_node_index == 0 {
            return Err(wrong_length);
        }
        if node_index & 1 == 1 || node_index == last_node_index {
            from_computed = node_hash(sibling, &from_computed);
            to_computed = node_hash(sibling, &to_computed);
            while node_index & 1 == 0 && node_index != 0 {
                node_index >>= 1;
                last_node_index >>= 1;
            }
        } else {
            to_computed = node_hash(&to_computed, sibling);
        }
        node_index >>= 1;
        last_node_index >>= 1;
    }
    // Step 7.
    if last_node_index != 0 {
        return Err(wrong_length);
    }
    if from_computed != *from_root {
        return Err(ConsistencyError::IncorrectFromRoot);
    }
    if to_computed != *to_root {
        return Err(ConsistencyError::IncorrectToRoot);
    }
    Ok(())
}

/// A tree is consistent with itself: empty proof, same root.
fn verify_same_size(from_root: &Hash, to_root: &Hash, proof: &[Hash]) -> Result<(), ConsistencyError> {
    if !proof.is_empty() {
        return Err(ConsistencyError::WrongProofLength { expected: 0, actual: proof.len() });
    }
    if from_root != to_root {
        return Err(ConsistencyError::RootsDifferAtSameSize);
    }
    Ok(())
}

/// The tree already holds `u64::MAX` leaves; no leaf index is left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeFull;

impl fmt::Display for TreeFull {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "the tree holds the maximum number of leaves")
    }
}

impl std::error::Error for TreeFull {}

/// Why bytes are not a serialised [`Frontier`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontierDecodeError {
    /// Fewer bytes than the tree size field.
    TooShort {
        /// Bytes given.
        bytes: usize,
    },
    /// The byte count does not match one hash per set bit of the size.
    WrongLength {
        /// Bytes a frontier of the encoded size has.
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
}

impl fmt::Display for FrontierDecodeError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooShort { bytes } => write!(formatter, "frontier of {bytes} bytes has no size"),
            Self::WrongLength { expected, actual } => {
                write!(formatter, "frontier has {actual} bytes, expected {expected}")
            }
        }
    }
}

impl std::error::Error for FrontierDecodeError {}

/// The right edge of the tree: the roots of its maximal perfect subtrees,
/// one per set bit of `size`, largest (leftmost) first. O(log n) hashes;
/// enough to append and to compute the root without reading the store.
///
/// Invariant: `subtree_roots.len() == size.count_ones()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    subtree_roots: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Frontier {
        Frontier::default()
    }

    /// Rebuilds the frontier of the tree of `size` leaves from stored
    /// nodes: one read per set bit of `size`.
    pub fn from_source<S: NodeSource + ?Sized>(size: u64, source: &S) -> Result<Frontier, S::Error> {
        let mut subtree_roots = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..u64::BITS).rev() {
            let width = 1u64 << level;
            if size & width != 0 {
                subtree_roots.push(source.node(level, start >> level)?);
                start += width;
            }
        }
        Ok(Frontier { size, subtree_roots })
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// MTH of all leaves appended so far (RFC 9162 §2.1.1).
    pub fn root(&self) -> Hash {
        let mut roots = self.subtree_roots.iter().rev();
        let Some(last) = roots.next() else {
            return empty_root();
        };
        roots.fold(*last, |right, left| node_hash(left, &right))
    }

    /// Appends a leaf hash and returns every node it completes, the leaf
    /// itself first (level 0) and then each new parent upwards: exactly
    /// the nodes the store must add. Amortised O(1): on average one merge.
    pub fn push(&mut self, leaf: Hash) -> Result<Vec<Node>, TreeFull> {
        let new_size = self.size.checked_add(1).ok_or(TreeFull)?;
        let index = self.size;
        // Each trailing one bit of the old size is a perfect subtree that the
        // new leaf's subtree now completes.
        let merges = self.size.trailing_ones();
        assert!(merges as usize <= self.subtree_roots.len(), "one root per set bit");
        let keep = self.subtree_roots.len() - merges as usize;
        let merged = self.subtree_roots.split_off(keep);
        let mut node = Node { level: 0, index, hash: leaf };
        let mut nodes = vec![node];
        for left in merged.iter().rev() {
            node = Node { level: node.level + 1, index: node.index >> 1, hash: node_hash(left, &node.hash) };
            nodes.push(node);
        }
        self.subtree_roots.push(node.hash);
        self.size = new_size;
        assert!(self.subtree_roots.len() == self.size.count_ones() as usize);
        Ok(nodes)
    }

    /// Serialises as u64be(size) || one hash per set bit of size, largest
    /// subtree first.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(FRONTIER_SIZE_BYTES + HASH_BYTES * self.subtree_roots.len());
        bytes.extend_from_slice(&self.size.to_be_bytes());
        for hash in &self.subtree_roots {
            bytes.extend_from_slice(hash);
        }
        bytes
    }

    /// Parses [`Frontier::to_bytes`] output; any other length is rejected.
    pub fn from_bytes(bytes: &[u8]) -> Result<Frontier, FrontierDecodeError> {
        let Some((size_bytes, hash_bytes)) = bytes.split_first_chunk::<FRONTIER_SIZE_BYTES>() else {
            return Err(FrontierDecodeError::TooShort { bytes: bytes.len() });
        };
        let size = u64::from_be_bytes(*size_bytes);
        let expected = FRONTIER_SIZE_BYTES + HASH_BYTES * size.count_ones() as usize;
        if bytes.len() != expected {
            return Err(FrontierDecodeError::WrongLength { expected, actual: bytes.len() });
        }
        let subtree_roots = hash_bytes
            .chunks_exact(HASH_BYTES)
            .map(|chunk| {
                let mut hash = [0u8; HASH_BYTES];
                hash.copy_from_slice(chunk);
                hash
            })
            .collect();
        Ok(Frontier { size, subtree_roots })
    }
}

/// Every complete subtree root of a tree, held in memory: one vector per
/// level. For tests, and for auditors replaying an export.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> MemoryTree {
        MemoryTree::default()
    }

    /// The tree over the given leaf hashes, in order.
    pub fn from_leaves<I: IntoIterator<Item = Hash>>(leaves: I) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for leaf in leaves {
            tree.push(leaf);
        }
        tree
    }

    /// Appends a leaf hash and stores every node it completes.
    pub fn push(&mut self, leaf: Hash) {
        // A Vec cannot hold 2^64 hashes, so the frontier can never be full.
        let Ok(nodes) = self.frontier.push(leaf) else { panic!("memory tree cannot reach 2^64 leaves") };
        for node in nodes {
            let level = node.level as usize;
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            assert!(self.levels[level].len() as u64 == node.index, "nodes complete in order");
            self.levels[level].push(node.hash);
        }
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// MTH of all leaves.
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }

    /// The append-side frontier of this tree.
    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }
}

impl NodeSource for MemoryTree {
    type Error = NodeMissing;

    fn node(&self, level: u32, index: u64) -> Result<Hash, NodeMissing> {
        let nodes = usize::try_from(level).ok().and_then(|level| self.levels.get(level));
        let hash = nodes.and_then(|nodes| usize::try_from(index).ok().and_then(|index| nodes.get(index)));
        hash.copied().ok_or(NodeMissing { level, index })
    }
}
