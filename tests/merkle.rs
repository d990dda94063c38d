//! Tests for `sunledger::merkle`: known answers from `../shared/vectors`
//! and RFC 6962, an exhaustive sweep of small trees against a naive
//! recursive reference written from the RFC text, and near misses that must
//! fail verification.

use std::cell::Cell;
use std::path::PathBuf;

use serde_json::Value;
use sunledger::merkle::{
    consistency_proof, empty_root, inclusion_proof, leaf_hash, node_hash, root, verify_consistency, verify_inclusion,
    ConsistencyError, ConsistencyProofError, Frontier, FrontierDecodeError, Hash, InclusionError, InclusionProofError,
    MemoryTree, NodeMissing, NodeSource, HASH_BYTES,
};

// ---------------------------------------------------------------- helpers

fn vectors_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors").join(name)
}

fn read_json(name: &str) -> Value {
    let path = vectors_path(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}

fn hex_decode(text: &str) -> Vec<u8> {
    assert!(text.len() % 2 == 0, "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|offset| u8::from_str_radix(&text[offset..offset + 2], 16).expect("hex digit"))
        .collect()
}

fn hash_from_hex(text: &str) -> Hash {
    hex_decode(text).try_into().expect("32-byte hash")
}

fn hashes_from_json(value: &Value) -> Vec<Hash> {
    value.as_array().expect("array").iter().map(|item| hash_from_hex(item.as_str().expect("hex"))).collect()
}

fn as_u64(value: &Value) -> u64 {
    value.as_u64().expect("unsigned integer")
}

/// Leaf hashes of the shared chain: the entry hashes of entries.json.
fn vector_leaves() -> Vec<Hash> {
    let entries = read_json("entries.json");
    entries
        .as_array()
        .expect("array")
        .iter()
        .map(|entry| hash_from_hex(entry["hash"].as_str().expect("hash")))
        .collect()
}

/// Distinct leaf hashes for synthetic trees.
fn synthetic_leaves(count: u64) -> Vec<Hash> {
    (0..count).map(|index| leaf_hash(&index.to_be_bytes())).collect()
}

fn flip_bit(hash: &Hash, bit: usize) -> Hash {
    let mut flipped = *hash;
    flipped[bit / 8] ^= 1 << (bit % 8);
    flipped
}

/// Wraps a source and counts node reads.
struct CountingSource<'a> {
    inner: &'a MemoryTree,
    reads: Cell<u32>,
}

impl NodeSource for CountingSource<'_> {
    type Error = NodeMissing;

    fn node(&self, level: u32, index: u64) -> Result<Hash, NodeMissing> {
        self.reads.set(self.reads.get() + 1);
        self.inner.node(level, index)
    }
}

fn bit_length(value: u64) -> u32 {
    64 - value.leading_zeros()
}

// ------------------------------------- naive reference (RFC 9162 §2.1 text)

fn split(width: usize) -> usize {
    let mut split = 1;
    while split * 2 < width {
        split *= 2;
    }
    split
}

/// MTH(D[n]), RFC 9162 §2.1.1, over leaf hashes.
fn reference_root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        width => {
            let k = split(width);
            node_hash(&reference_root(&leaves[..k]), &reference_root(&leaves[k..]))
        }
    }
}

/// PATH(m, D[n]), RFC 9162 §2.1.3.1.
fn reference_path(index: usize, leaves: &[Hash]) -> Vec<Hash> {
    if leaves.len() <= 1 {
        return Vec::new();
    }
    let k = split(leaves.len());
    if index < k {
        let mut path = reference_path(index, &leaves[..k]);
        path.push(reference_root(&leaves[k..]));
        path
    } else {
        let mut path = reference_path(index - k, &leaves[k..]);
        path.push(reference_root(&leaves[..k]));
        path
    }
}

/// SUBPROOF(m, D[n], b), RFC 9162 §2.1.4.1.
fn reference_subproof(from: usize, leaves: &[Hash], from_is_whole: bool) -> Vec<Hash> {
    if from == leaves.len() {
        return if from_is_whole { Vec::new() } else { vec![reference_root(leaves)] };
    }
    let k = split(leaves.len());
    if from <= k {
        let mut proof = reference_subproof(from, &leaves[..k], from_is_whole);
        proof.push(reference_root(&leaves[k..]));
        proof
    } else {
        let mut proof = reference_subproof(from - k, &leaves[k..], false);
        proof.push(reference_root(&leaves[..k]));
        proof
    }
}

// ------------------------------------------------ shared vectors (SPEC §8)

#[test]
fn vector_roots_for_every_size() {
    // Goal: the root of every prefix of the shared chain, from stored nodes
    // and from the frontier, equals merkle.json's `roots` byte for byte.
    let leaves = vector_leaves();
    let vectors = read_json("merkle.json");
    let roots = vectors["roots"].as_object().expect("roots object");
    assert_eq!(roots.len(), leaves.len() + 1, "a root for every size 0..=n");
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    let mut frontier = Frontier::new();
    for size in 0..=leaves.len() as u64 {
        let expected = hash_from_hex(roots[&size.to_string()].as_str().expect("hex root"));
        assert_eq!(root(size, &tree), Ok(expected), "stored-node root at size {size}");
        assert_eq!(frontier.root(), expected, "frontier root at size {size}");
        if let Some(leaf) = leaves.get(size as usize) {
            frontier.push(*leaf).expect("tree not full");
        }
    }
}

#[test]
fn vector_inclusion_proofs() {
    // Goal: every inclusion proof in merkle.json is reproduced exactly from
    // stored nodes and verifies against the vector root.
    let leaves = vector_leaves();
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    let vectors = read_json("merkle.json");
    let cases = vectors["inclusion"].as_array().expect("inclusion array");
    assert!(!cases.is_empty());
    for case in cases {
        let (index, size) = (as_u64(&case["index"]), as_u64(&case["size"]));
        let expected = hashes_from_json(&case["proof"]);
        let root_hex = vectors["roots"][size.to_string()].as_str().expect("root");
        assert_eq!(inclusion_proof(index, size, &tree), Ok(expected.clone()), "index {index} size {size}");
        let leaf = &leaves[index as usize];
        assert_eq!(verify_inclusion(leaf, index, size, &expected, &hash_from_hex(root_hex)), Ok(()));
    }
}

#[test]
fn vector_consistency_proofs() {
    // Goal: every consistency proof in merkle.json is reproduced exactly
    // from stored nodes and verifies between the two vector roots.
    let tree = MemoryTree::from_leaves(vector_leaves());
    let vectors = read_json("merkle.json");
    let cases = vectors["consistency"].as_array().expect("consistency array");
    assert!(!cases.is_empty());
    for case in cases {
        let (from, to) = (as_u64(&case["from"]), as_u64(&case["to"]));
        let expected = hashes_from_json(&case["proof"]);
        let from_root = hash_from_hex(vectors["roots"][from.to_string()].as_str().expect("root"));
        let to_root = hash_from_hex(vectors["roots"][to.to_string()].as_str().expect("root"));
        assert_eq!(consistency_proof(from, to, &tree), Ok(expected.clone()), "from {from} to {to}");
        assert_eq!(verify_consistency(from, to, &from_root, &to_root, &expected), Ok(()));
    }
}

// --------------------------- RFC 6962 reference vectors (CT test tree)

/// Leaf data of the 8-leaf test tree of the Certificate Transparency
/// reference code (also transparency-dev/merkle `testonly`).
const RFC6962_LEAF_DATA: [&str; 8] =
    ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];

/// Every complete subtree root of that tree, by level.
const RFC6962_NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// Roots for sizes 0..=8.
const RFC6962_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof).
const RFC6962_INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (2, 3, &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (from size, to size, proof).
const RFC6962_CONSISTENCY: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
];

fn rfc6962_tree() -> MemoryTree {
    MemoryTree::from_leaves(RFC6962_LEAF_DATA.iter().map(|data| leaf_hash(&hex_decode(data))))
}

fn hashes(texts: &[&str]) -> Vec<Hash> {
    texts.iter().map(|text| hash_from_hex(text)).collect()
}

#[test]
fn rfc6962_leaf_and_node_hashes() {
    // Goal: leaf_hash and node_hash reproduce every complete subtree root of
    // the CT reference tree, and the tree stores exactly those nodes.
    let tree = rfc6962_tree();
    for (level, nodes) in RFC6962_NODES.iter().enumerate() {
        for (index, expected) in nodes.iter().enumerate() {
            assert_eq!(tree.node(level as u32, index as u64), Ok(hash_from_hex(expected)), "node ({level}, {index})");
        }
        let past_end = nodes.len() as u64;
        assert_eq!(tree.node(level as u32, past_end), Err(NodeMissing { level: level as u32, index: past_end }));
    }
    assert!(tree.node(4, 0).is_err(), "no level above the root");
}

#[test]
fn rfc6962_roots() {
    // Goal: roots of the CT reference tree for sizes 0..=8 match, from
    // stored nodes and from the frontier.
    let tree = rfc6962_tree();
    let mut frontier = Frontier::new();
    for (size, expected) in RFC6962_ROOTS.iter().enumerate() {
        assert_eq!(root(size as u64, &tree), Ok(hash_from_hex(expected)), "size {size}");
        assert_eq!(frontier.root(), hash_from_hex(expected), "frontier size {size}");
        if let Ok(leaf) = tree.node(0, size as u64) {
            frontier.push(leaf).expect("tree not full");
        }
    }
}

#[test]
fn rfc6962_inclusion_proofs() {
    // Goal: the CT reference inclusion proofs are reproduced and verify.
    let tree = rfc6962_tree();
    for (index, size, proof) in RFC6962_INCLUSION {
        let expected = hashes(proof);
        let tree_root = hash_from_hex(RFC6962_ROOTS[size as usize]);
        let leaf = tree.node(0, index).expect("leaf");
        assert_eq!(inclusion_proof(index, size, &tree), Ok(expected.clone()), "index {index} size {size}");
        assert_eq!(verify_inclusion(&leaf, index, size, &expected, &tree_root), Ok(()));
    }
}

#[test]
fn rfc6962_consistency_proofs() {
    // Goal: the CT reference consistency proofs are reproduced and verify.
    let tree = rfc6962_tree();
    for (from, to, proof) in RFC6962_CONSISTENCY {
        let expected = hashes(proof);
        let from_root = hash_from_hex(RFC6962_ROOTS[from as usize]);
        let to_root = hash_from_hex(RFC6962_ROOTS[to as usize]);
        assert_eq!(consistency_proof(from, to, &tree), Ok(expected.clone()), "from {from} to {to}");
        assert_eq!(verify_consistency(from, to, &from_root, &to_root, &expected), Ok(()));
    }
}

// ------------------------------------------------------------- exhaustive

const INCLUSION_SIZE_MAX: u64 = 130;
const CONSISTENCY_SIZE_MAX: u64 = 40;

#[test]
fn exhaustive_roots_and_frontier() {
    // Goal: for every size 0..=130 the frontier root, the stored-node root
    // and the naive recursive root agree; push returns exactly the newly
    // completed nodes; the frontier survives to_bytes/from_bytes and can be
    // rebuilt from stored nodes.
    let leaves = synthetic_leaves(INCLUSION_SIZE_MAX);
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    let mut frontier = Frontier::new();
    for size in 0..=INCLUSION_SIZE_MAX {
        let expected = reference_root(&leaves[..size as usize]);
        assert_eq!(frontier.size(), size);
        assert_eq!(frontier.root(), expected, "frontier size {size}");
        assert_eq!(root(size, &tree), Ok(expected), "stored root size {size}");
        assert_eq!(Frontier::from_bytes(&frontier.to_bytes()), Ok(frontier.clone()));
        assert_eq!(Frontier::from_source(size, &tree), Ok(frontier.clone()));
        let Some(leaf) = leaves.get(size as usize) else {
            break;
        };
        let nodes = frontier.push(*leaf).expect("tree not full");
        assert_eq!(nodes.len() as u32, 1 + size.trailing_ones(), "nodes completed at size {size}");
        for node in nodes {
            let start = (node.index << node.level) as usize;
            let end = start + (1usize << node.level);
            assert_eq!(end, size as usize + 1, "a completed node ends at the new leaf");
            assert_eq!(node.hash, reference_root(&leaves[start..end]));
        }
    }
}

/// Checks one inclusion proof against the reference and its near misses.
fn check_inclusion(tree: &MemoryTree, leaves: &[Hash], roots: &[Hash], index: u64, size: u64) {
    let proof = inclusion_proof(index, size, tree).expect("proof");
    assert_eq!(proof, reference_path(index as usize, &leaves[..size as usize]), "index {index} size {size}");
    let leaf = &leaves[index as usize];
    let tree_root = &roots[size as usize];
    assert_eq!(verify_inclusion(leaf, index, size, &proof, tree_root), Ok(()));
    let mut tampered = proof.clone();
    for position in 0..proof.len() {
        for bit in 0..HASH_BYTES * 8 {
            tampered[position] = flip_bit(&proof[position], bit);
            assert!(verify_inclusion(leaf, index, size, &tampered, tree_root).is_err());
        }
        tampered[position] = proof[position];
    }
    for other_index in (0..=size).filter(|other| *other != index) {
        assert!(verify_inclusion(leaf, other_index, size, &proof, tree_root).is_err());
    }
    for other_size in (1..roots.len() as u64).filter(|other| *other != size) {
        let other_root = &roots[other_size as usize];
        assert!(verify_inclusion(leaf, index, other_size, &proof, other_root).is_err());
    }
}

#[test]
fn exhaustive_inclusion_proofs() {
    // Goal: in every tree of size 1..=130, every leaf's proof equals the
    // naive PATH and verifies; flipping any bit of any proof hash, or
    // claiming any other index, or any other size (with that size's root),
    // fails.
    let leaves = synthetic_leaves(INCLUSION_SIZE_MAX);
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    let roots: Vec<Hash> = (0..=leaves.len()).map(|size| reference_root(&leaves[..size])).collect();
    for size in 1..=INCLUSION_SIZE_MAX {
        for index in 0..size {
            check_inclusion(&tree, &leaves, &roots, index, size);
        }
    }
}

/// Checks one consistency proof against the reference and its near misses.
fn check_consistency(tree: &MemoryTree, leaves: &[Hash], roots: &[Hash], from: u64, to: u64) {
    let proof = consistency_proof(from, to, tree).expect("proof");
    assert_eq!(proof, reference_subproof(from as usize, &leaves[..to as usize], true), "from {from} to {to}");
    let (from_root, to_root) = (&roots[from as usize], &roots[to as usize]);
    assert_eq!(verify_consistency(from, to, from_root, to_root, &proof), Ok(()));
    let mut tampered = proof.clone();
    for position in 0..proof.len() {
        for bit in 0..HASH_BYTES * 8 {
            tampered[position] = flip_bit(&proof[position], bit);
            assert!(verify_consistency(from, to, from_root, to_root, &tampered).is_err());
        }
        tampered[position] = proof[position];
    }
    for other_from in (0..=to + 1).filter(|other| *other != from) {
        let other_root = roots.get(other_from as usize).unwrap_or(from_root);
        assert!(verify_consistency(other_from, to, other_root, to_root, &proof).is_err(), "from {other_from}");
    }
    for other_to in (0..roots.len() as u64).filter(|other| *other != to) {
        let other_root = &roots[other_to as usize];
        assert!(verify_consistency(from, other_to, from_root, other_root, &proof).is_err(), "to {other_to}");
    }
}

#[test]
fn exhaustive_consistency_proofs() {
    // Goal: between every pair of sizes 1 <= from <= to <= 40 the proof
    // equals the naive SUBPROOF and verifies; flipping any bit of any proof
    // hash, or claiming any other from or to size (with its root), fails.
    let leaves = synthetic_leaves(CONSISTENCY_SIZE_MAX);
    let tree = MemoryTree::from_leaves(leaves.iter().copied());
    let roots: Vec<Hash> = (0..=leaves.len()).map(|size| reference_root(&leaves[..size])).collect();
    for to in 1..=CONSISTENCY_SIZE_MAX {
        for from in 1..=to {
            check_consistency(&tree, &leaves, &roots, from, to);
        }
    }
}

#[test]
fn proofs_read_logarithmically_many_nodes() {
    // Goal: roots and proofs read O(log n) stored nodes: one per set bit of
    // the size for a root, at most 2·bits(size) + 1 for a proof.
    let tree = MemoryTree::from_leaves(synthetic_leaves(1000));
    let source = CountingSource { inner: &tree, reads: Cell::new(0) };
    for size in 1..=1000u64 {
        source.reads.set(0);
        root(size, &source).expect("root");
        assert_eq!(source.reads.get(), size.count_ones(), "root reads at size {size}");
        for index in [0, size / 3, size / 2, size - 1] {
            source.reads.set(0);
            inclusion_proof(index, size, &source).expect("inclusion proof");
            assert!(source.reads.get() <= 2 * bit_length(size) + 1, "inclusion reads {index}/{size}");
        }
        for from in [1, size / 3 + 1, size / 2 + 1, size] {
            source.reads.set(0);
            consistency_proof(from, size, &source).expect("consistency proof");
            assert!(source.reads.get() <= 2 * bit_length(size) + 1, "consistency reads {from}/{size}");
        }
    }
}

// ------------------------------------------------- bad arguments, no panic

#[test]
fn proof_builders_reject_bad_arguments() {
    // Goal: impossible requests return typed errors, and requests beyond
    // what the source holds return the source's error, never a panic.
    let tree = MemoryTree::from_leaves(synthetic_leaves(5));
    let index_out_of_range = |index, size| Err(InclusionProofError::IndexOutOfRange { index, size });
    assert_eq!(inclusion_proof(0, 0, &tree), index_out_of_range(0, 0));
    assert_eq!(inclusion_proof(5, 5, &tree), index_out_of_range(5, 5));
    assert_eq!(inclusion_proof(u64::MAX, u64::MAX, &tree), index_out_of_range(u64::MAX, u64::MAX));
    assert!(matches!(inclusion_proof(0, 6, &tree), Err(InclusionProofError::Source(_))));
    assert!(matches!(inclusion_proof(u64::MAX - 1, u64::MAX, &tree), Err(InclusionProofError::Source(_))));
    assert!(matches!(inclusion_proof(0, u64::MAX, &tree), Err(InclusionProofError::Source(_))));
    let invalid_sizes = |from, to| Err(ConsistencyProofError::InvalidSizes { from, to });
    assert_eq!(consistency_proof(0, 0, &tree), invalid_sizes(0, 0));
    assert_eq!(consistency_proof(0, 5, &tree), invalid_sizes(0, 5));
    assert_eq!(consistency_proof(5, 4, &tree), invalid_sizes(5, 4));
    assert_eq!(consistency_proof(5, 5, &tree), Ok(Vec::new()));
    assert!(matches!(consistency_proof(1, u64::MAX, &tree), Err(ConsistencyProofError::Source(_))));
    assert!(matches!(consistency_proof(u64::MAX - 1, u64::MAX, &tree), Err(ConsistencyProofError::Source(_))));
    assert!(root(6, &tree).is_err());
    assert!(root(u64::MAX, &tree).is_err());
    assert!(Frontier::from_source(6, &tree).is_err());
}

#[test]
fn verify_inclusion_rejects_bad_arguments() {
    // Goal: each malformed claim gets its own error, including extreme sizes.
    let leaf = leaf_hash(b"leaf");
    let other = leaf_hash(b"other");
    let cases: &[(u64, u64, Vec<Hash>, Hash, InclusionError)] = &[
        (0, 0, vec![], leaf, InclusionError::IndexOutOfRange { index: 0, size: 0 }),
        (1, 1, vec![], leaf, InclusionError::IndexOutOfRange { index: 1, size: 1 }),
        (u64::MAX, u64::MAX, vec![], leaf, InclusionError::IndexOutOfRange { index: u64::MAX, size: u64::MAX }),
        (0, 1, vec![other], leaf, InclusionError::WrongProofLength { expected: 0, actual: 1 }),
        (0, 2, vec![], leaf, InclusionError::WrongProofLength { expected: 1, actual: 0 }),
        (0, 1, vec![], other, InclusionError::IncorrectRoot),
        (0, u64::MAX, vec![], leaf, InclusionError::WrongProofLength { expected: 64, actual: 0 }),
        (u64::MAX - 1, u64::MAX, vec![], leaf, InclusionError::WrongProofLength { expected: 63, actual: 0 }),
        (0, u64::MAX, vec![other; 64], leaf, InclusionError::IncorrectRoot),
        (u64::MAX - 1, u64::MAX, vec![other; 63], leaf, InclusionError::IncorrectRoot),
        (0, 1, vec![other; 1000], leaf, InclusionError::WrongProofLength { expected: 0, actual: 1000 }),
    ];
    for (index, size, proof, tree_root, expected) in cases {
        assert_eq!(verify_inclusion(&leaf, *index, *size, proof, tree_root), Err(*expected), "{index}/{size}");
    }
    assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()), "a one-leaf tree's root is its leaf");
}

#[test]
fn verify_consistency_rejects_bad_arguments() {
    // Goal: each malformed claim gets its own error, including extreme sizes.
    let (first, second) = (leaf_hash(b"first"), leaf_hash(b"second"));
    let cases: &[(u64, u64, Hash, Vec<Hash>, ConsistencyError)] = &[
        (0, 0, first, vec![], ConsistencyError::InvalidSizes { from: 0, to: 0 }),
        (0, 1, first, vec![], ConsistencyError::InvalidSizes { from: 0, to: 1 }),
        (2, 1, first, vec![], ConsistencyError::InvalidSizes { from: 2, to: 1 }),
        (u64::MAX, 1, first, vec![], ConsistencyError::InvalidSizes { from: u64::MAX, to: 1 }),
        (1, 1, first, vec![first], ConsistencyError::WrongProofLength { expected: 0, actual: 1 }),
        (1, 1, second, vec![], ConsistencyError::RootsDifferAtSameSize),
        (1, 2, second, vec![], ConsistencyError::WrongProofLength { expected: 1, actual: 0 }),
        (1, u64::MAX, second, vec![], ConsistencyError::WrongProofLength { expected: 64, actual: 0 }),
        (u64::MAX - 1, u64::MAX, second, vec![], ConsistencyError::WrongProofLength { expected: 64, actual: 0 }),
        (u64::MAX - 1, u64::MAX, second, vec![first; 64], ConsistencyError::IncorrectFromRoot),
        (1, u64::MAX, second, vec![second; 64], ConsistencyError::IncorrectToRoot),
        (1, 2, second, vec![first; 1000], ConsistencyError::WrongProofLength { expected: 1, actual: 1000 }),
    ];
    for (from, to, to_root, proof, expected) in cases {
        assert_eq!(verify_consistency(*from, *to, &first, to_root, proof), Err(*expected), "{from}->{to}");
    }
    assert_eq!(verify_consistency(u64::MAX, u64::MAX, &first, &first, &[]), Ok(()));
}

#[test]
fn frontier_from_bytes_rejects_wrong_lengths() {
    // Goal: only the exact encoding of a frontier decodes; every truncation
    // and every extension is rejected without panicking.
    let mut frontier = Frontier::new();
    for leaf in synthetic_leaves(11) {
        frontier.push(leaf).expect("tree not full");
    }
    let bytes = frontier.to_bytes();
    assert_eq!(bytes.len(), 8 + 3 * HASH_BYTES, "size 11 has three set bits");
    for length in 0..bytes.len() {
        let expected = if length < 8 {
            FrontierDecodeError::TooShort { bytes: length }
        } else {
            FrontierDecodeError::WrongLength { expected: bytes.len(), actual: length }
        };
        assert_eq!(Frontier::from_bytes(&bytes[..length]), Err(expected));
    }
    let mut extended = bytes.clone();
    extended.push(0);
    assert!(Frontier::from_bytes(&extended).is_err());
    assert!(Frontier::from_bytes(&u64::MAX.to_be_bytes()).is_err(), "64 hashes are missing");
}

#[test]
fn frontier_push_stops_at_full_tree() {
    // Goal: a frontier decoded at the largest size refuses another leaf
    // instead of overflowing.
    let mut bytes = u64::MAX.to_be_bytes().to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 64 * HASH_BYTES));
    let mut frontier = Frontier::from_bytes(&bytes).expect("full frontier");
    assert_eq!(frontier.size(), u64::MAX);
    assert!(frontier.push(leaf_hash(b"one more")).is_err());
    assert_eq!(frontier.size(), u64::MAX, "a refused push changes nothing");
}
