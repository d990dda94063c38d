//! The generator's write path: plans events in chain order, sizes each
//! county's monthly funding from its planned spending, and seals events in
//! parallel chunks written in order.
//!
//! Owns: chain order and the generator's book of county fund balances.
//! Invariant: the book never goes negative (an appropriation covers each
//! county-month's debits before they happen), so the validator never answers
//! `insufficient_funds`; memory holds one chunk and one county-month of
//! drafts, never the output.

use super::draft::{Draft, Keyring};
use super::plan::{idle_plant, province_plants, tranche, CountyMonth, Setup, World};
use super::world::PROGRAM_COUNT;
use std::io;

/// Drafts sealed per parallel batch: enough to keep every core busy, small
/// enough that memory stays flat (a few MB of lines).
pub const CHUNK_EVENTS: usize = 8192;
/// Below this many drafts a chunk is sealed on the calling thread.
const PARALLEL_EVENTS_MIN: usize = 256;

/// Where sealed lines go, in chain order.
pub trait LineSink {
    fn accept(&mut self, lines: Vec<String>) -> io::Result<()>;
}

pub struct Engine<'a> {
    world: &'a World,
    keyring: Keyring,
    chunk: Vec<Draft>,
    sink: &'a mut dyn LineSink,
    events: u64,
    threads: usize,
    /// Expected balance of each county finance bureau's fund accounts.
    balances: Vec<[u64; PROGRAM_COUNT]>,
}

impl<'a> Engine<'a> {
    /// Generates the whole ledger into `sink`; returns the events written and
    /// the keys used.
    pub fn run(world: &'a World, sink: &'a mut dyn LineSink) -> io::Result<(u64, Keyring)> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut engine = Engine {
            world,
            keyring: Keyring::default(),
            chunk: Vec::with_capacity(CHUNK_EVENTS),
            sink,
            events: 0,
            threads,
            balances: vec![[0; PROGRAM_COUNT]; world.layout.counties.len()],
        };
        engine.setup()?;
        for month in 0..world.calendar.months {
            for county in 0..world.layout.counties.len() {
                engine.county_month(county, month)?;
            }
            let (drafts, to_county) = province_plants(world, month);
            engine.push_all(drafts)?;
            if let Some((program, fen)) = to_county {
                engine.balances[0][program] += fen;
            }
        }
        engine.flush()?;
        Ok((engine.events, engine.keyring))
    }

    fn setup(&mut self) -> io::Result<()> {
        let drafts = Setup::genesis(self.world, &mut self.keyring);
        self.push_all(drafts)?;
        for county in 0..self.world.layout.counties.len() {
            let drafts = Setup::county(self.world, &mut self.keyring, county);
            self.push_all(drafts)?;
        }
        self.push_all(idle_plant(self.world))
    }

    /// One county's month: funding for what it will spend, then its events.
    fn county_month(&mut self, county: usize, month: u32) -> io::Result<()> {
        let drafts = CountyMonth::build(self.world, county, month);
        let mut debits = [0u64; PROGRAM_COUNT];
        for draft in &drafts {
            if let Some((program, fen)) = draft.effect.debit {
                debits[program] += fen;
            }
        }
        for (program, debit) in debits.iter().enumerate() {
            // Credits inside the month (refunds, reallocations) are not
            // counted on: they may come after the debits they would cover.
            let need = debit.saturating_sub(self.balances[county][program]);
            if need > 0 {
                self.push_all(tranche(self.world, county, month, program, need))?;
                self.balances[county][program] += need;
            }
        }
        for draft in &drafts {
            let balances = &mut self.balances[county];
            if let Some((program, fen)) = draft.effect.debit {
                assert!(balances[program] >= fen, "the generator would overdraw {}: {}", draft.office, draft.id);
                balances[program] -= fen;
            }
            if let Some((program, fen)) = draft.effect.credit {
                balances[program] += fen;
            }
        }
        self.push_all(drafts)
    }

    fn push_all(&mut self, drafts: Vec<Draft>) -> io::Result<()> {
        for draft in drafts {
            self.chunk.push(draft);
            if self.chunk.len() >= CHUNK_EVENTS {
                self.flush()?;
            }
        }
        Ok(())
    }

    /// Seals the chunk on all cores and hands the lines over in order.
    fn flush(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let drafts = std::mem::take(&mut self.chunk);
        // Keys of offices registered in this chunk are derived already (the
        // registration drafts needed their public keys).
        let ledger_id = self.world.ledger_id.as_str();
        let keyring = &self.keyring;
        let lines: Vec<String> = if drafts.len() < PARALLEL_EVENTS_MIN || self.threads == 1 {
            drafts.iter().map(|d| d.seal(ledger_id, keyring)).collect()
        } else {
            let part = drafts.len().div_ceil(self.threads);
            std::thread::scope(|scope| {
                let workers: Vec<_> = drafts
                    .chunks(part)
                    .map(|part| {
                        scope.spawn(move || part.iter().map(|d| d.seal(ledger_id, keyring)).collect::<Vec<_>>())
                    })
                    .collect();
                workers.into_iter().flat_map(|w| w.join().expect("a sealing thread panicked")).collect()
            })
        };
        assert_eq!(lines.len(), drafts.len());
        self.events += lines.len() as u64;
        self.chunk = drafts;
        self.chunk.clear();
        self.sink.accept(lines)
    }
}
