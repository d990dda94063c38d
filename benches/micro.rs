//! Criterion micro-benchmarks (`cargo bench --bench micro`): the per-event
//! steps of the write and verify paths, each on its own, beside the two
//! signature ceilings (raw dalek batch, strict single) measured in the same
//! run. The macro figures (import, verify, HTTP, reopen, reads) come from
//! `tools/bench.rs`; BENCHMARKS.md has both.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use std::hint::black_box;
use sunledger::envelope::Envelope;

/// Signatures per batch: the size `tools/bench.rs` uses for the ceiling.
const BATCH: usize = 64;

fn payout_payload(n: usize) -> Vec<u8> {
    format!(
        concat!(
            r#"{{"v":1,"ledger":"bench","id":"po-422822-dibao-2019-01-{n:06}","kind":"payout","office":"422822","#,
            r#""at":"2019-01-25","body":{{"household_id":"422822101201-{n:04}","program":"dibao","amount_fen":45000,"#,
            r#""period":"2019-01","card_digest":"4ff9e691bf41608303acbd074337b0c3aecfde04cac147ac85614be4e7f2ac9c"}}}}"#
        ),
        n = n
    )
    .into_bytes()
}

struct Signed {
    keys: Vec<VerifyingKey>,
    messages: Vec<Vec<u8>>,
    signatures: Vec<[u8; 64]>,
}

fn signed(count: usize) -> Signed {
    let signers: Vec<SigningKey> = (0..count).map(|i| SigningKey::from_bytes(&[(i % 251) as u8 + 1; 32])).collect();
    let messages: Vec<Vec<u8>> = (0..count).map(payout_payload).collect();
    let signatures = signers.iter().zip(&messages).map(|(k, m)| k.sign(m).to_bytes()).collect();
    Signed { keys: signers.iter().map(SigningKey::verifying_key).collect(), messages, signatures }
}

fn signatures(c: &mut Criterion) {
    let set = signed(BATCH);
    let mut group = c.benchmark_group("signatures");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("raw dalek verify_batch x64 (the ceiling, one core)", |b| {
        let messages: Vec<&[u8]> = set.messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<Signature> = set.signatures.iter().map(Signature::from_bytes).collect();
        b.iter(|| ed25519_dalek::verify_batch(black_box(&messages), &signatures, &set.keys).unwrap())
    });
    group.bench_function("strict single x64 (what sunledger uses, one core)", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                assert!(sunledger::crypto::verify_strict(
                    &set.keys[i],
                    black_box(&set.messages[i]),
                    &set.signatures[i]
                ));
            }
        })
    });
    group.bench_function("dalek verify_strict x64 (the same verdicts, R decompressed, one core)", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                let signature = Signature::from_bytes(&set.signatures[i]);
                assert!(set.keys[i].verify_strict(black_box(&set.messages[i]), &signature).is_ok());
            }
        })
    });
    group.bench_function("crypto::verify_batch x64 (strict, all cores)", |b| {
        let mut batch = sunledger::crypto::SignatureBatch::default();
        for i in 0..BATCH {
            let (key, message) = (batch.add_key(set.keys[i]), batch.add_message(set.messages[i].clone()));
            batch.push(key, message, set.signatures[i]);
        }
        b.iter_batched(
            || batch.clone(),
            |batch| assert!(sunledger::crypto::verify_batch(black_box(batch)).iter().all(|v| *v)),
            criterion::BatchSize::SmallInput,
        )
    });
    group.finish();
}

fn parsing_and_hashing(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let envelope = Envelope::sign(payout_payload(1), &[("422822/k1".to_string(), key)]);
    let line = envelope.to_json().into_bytes();
    let mut group = c.benchmark_group("per event");
    group.throughput(Throughput::Elements(1));
    group.bench_function("envelope::parse (DSSE JSON + base64)", |b| {
        b.iter(|| Envelope::parse(black_box(&line)).unwrap())
    });
    group.bench_function("payload::parse_payload (strict, typed)", |b| {
        b.iter(|| sunledger::payload::parse_payload(black_box(&envelope.payload)).unwrap())
    });
    group.bench_function("chain::record_hash (entry hash over PAE digest)", |b| {
        b.iter(|| sunledger::chain::record_hash(black_box(42), &[9; 32], 1_546_300_800_000, &envelope))
    });
    group.throughput(Throughput::Elements(1024));
    group.bench_function("merkle::Frontier::push x1024 (amortised)", |b| {
        b.iter_batched(
            sunledger::merkle::Frontier::new,
            |mut frontier| {
                for i in 0..1024u32 {
                    let mut leaf = [0u8; 32];
                    leaf[..4].copy_from_slice(&i.to_be_bytes());
                    frontier.push(leaf).unwrap();
                }
                frontier
            },
            BatchSize::SmallInput,
        )
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("personal::find_in_text (a 60-character memo)", |b| {
        let memo = "2019年1月低保金发放，财农〔2019〕12号文件，批次202501150001";
        b.iter(|| sunledger::personal::find_in_text(black_box(memo)))
    });
    group.finish();
}

criterion_group!(benches, signatures, parsing_and_hashing);
criterion_main!(benches);
