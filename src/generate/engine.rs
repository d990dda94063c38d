//! The generator's write path: plans events in chain order, sizes each
//! county's monthly funding from its planned spending, seals events on all
//! cores and hands the lines over in order.
//!
//! Owns: chain order, the generator's book of county fund balances, and the
//! pipeline. The calling thread plans chunk k+1 and writes finished chunks
//! while a sealing stage serialises and signs chunk k (split over the cores
//! with `std::thread::scope`); one sealing stage and FIFO channels keep the
//! lines in chain order.
//!
//! Invariant: the book never goes negative (an appropriation covers each
//! county-month's debits before they happen), so the validator never answers
//! `insufficient_funds`. Memory holds one county-month of drafts and at most
//! `CHUNKS_IN_FLIGHT_MAX + 2` chunks, never the output.

use super::draft::{Draft, Keyring};
use super::plan::{idle_plant, province_plants, tranche, CountyMonth, Setup, World};
use super::world::PROGRAM_COUNT;
use std::io;
use std::sync::mpsc::{channel, sync_channel, Receiver, SyncSender};

/// Drafts sealed per parallel batch: enough to keep every core busy, small
/// enough that memory stays flat (a few MB of lines).
pub const CHUNK_EVENTS: usize = 8192;
/// Chunks planned but not yet taken by the sealing stage. One is enough to
/// overlap planning with sealing; more would only hold memory.
const CHUNKS_IN_FLIGHT_MAX: usize = 1;
/// Below this many drafts a chunk is sealed on one thread.
const PARALLEL_EVENTS_MIN: usize = 256;

/// Where sealed lines go, in chain order.
pub trait LineSink {
    fn accept(&mut self, lines: Vec<String>) -> io::Result<()>;
}

/// Generates the whole ledger into `sink`; returns the events written and
/// the keys used.
pub fn run(world: &World, sink: &mut dyn LineSink) -> io::Result<(u64, Keyring)> {
    let keyring = Setup::keyring(world);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let events = std::thread::scope(|scope| {
        let (to_sealer, chunks) = sync_channel::<Vec<Draft>>(CHUNKS_IN_FLIGHT_MAX);
        let (sealed_sender, sealed) = channel::<Vec<String>>();
        let keyring = &keyring;
        scope.spawn(move || {
            for chunk in chunks {
                if sealed_sender.send(seal(world, keyring, &chunk, threads)).is_err() {
                    break; // The planner stopped (a write failed).
                }
            }
        });
        let mut planner = Planner {
            world,
            keyring,
            chunk: Vec::with_capacity(CHUNK_EVENTS),
            to_sealer: Some(to_sealer),
            sealed,
            sink,
            events: 0,
            balances: vec![[0; PROGRAM_COUNT]; world.layout.counties.len()],
        };
        planner.plan()?;
        planner.finish()
    })?;
    Ok((events, keyring))
}

/// Serialises and signs a chunk, split over `threads` threads.
fn seal(world: &World, keyring: &Keyring, drafts: &[Draft], threads: usize) -> Vec<String> {
    let ledger_id = world.ledger_id.as_str();
    if drafts.len() < PARALLEL_EVENTS_MIN || threads == 1 {
        return drafts.iter().map(|d| d.seal(ledger_id, keyring)).collect();
    }
    let part = drafts.len().div_ceil(threads);
    let lines: Vec<String> = std::thread::scope(|scope| {
        let workers: Vec<_> = drafts
            .chunks(part)
            .map(|part| scope.spawn(move || part.iter().map(|d| d.seal(ledger_id, keyring)).collect::<Vec<_>>()))
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a sealing thread panicked")).collect()
    });
    assert_eq!(lines.len(), drafts.len());
    lines
}

struct Planner<'a> {
    world: &'a World,
    keyring: &'a Keyring,
    chunk: Vec<Draft>,
    /// None once every chunk has been sent.
    to_sealer: Option<SyncSender<Vec<Draft>>>,
    sealed: Receiver<Vec<String>>,
    sink: &'a mut dyn LineSink,
    events: u64,
    /// Expected balance of each county finance bureau's fund accounts.
    balances: Vec<[u64; PROGRAM_COUNT]>,
}

impl Planner<'_> {
    fn plan(&mut self) -> io::Result<()> {
        let world = self.world;
        self.push_all(Setup::genesis(world, self.keyring))?;
        for county in 0..world.layout.counties.len() {
            self.push_all(Setup::county(world, self.keyring, county))?;
        }
        self.push_all(idle_plant(world))?;
        for month in 0..world.calendar.months {
            for county in 0..world.layout.counties.len() {
                self.county_month(county, month)?;
            }
            let (drafts, to_county) = province_plants(world, month);
            self.push_all(drafts)?;
            if let Some((program, fen)) = to_county {
                self.balances[0][program] += fen;
            }
        }
        Ok(())
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
                self.send_chunk()?;
            }
        }
        Ok(())
    }

    /// Hands the chunk to the sealing stage (waiting while it is busy with
    /// `CHUNKS_IN_FLIGHT_MAX` others), then writes whatever it has finished.
    fn send_chunk(&mut self) -> io::Result<()> {
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK_EVENTS));
        let sender = self.to_sealer.as_ref().expect("chunks are sent before finish");
        sender.send(chunk).expect("the sealing stage runs until the planner finishes");
        while let Ok(lines) = self.sealed.try_recv() {
            self.write(lines)?;
        }
        Ok(())
    }

    fn write(&mut self, lines: Vec<String>) -> io::Result<()> {
        self.events += lines.len() as u64;
        self.sink.accept(lines)
    }

    /// Sends the last chunk and writes everything still being sealed.
    fn finish(mut self) -> io::Result<u64> {
        if !self.chunk.is_empty() {
            self.send_chunk()?;
        }
        self.to_sealer = None; // Closing the channel ends the sealing stage.
        while let Ok(lines) = self.sealed.recv() {
            self.write(lines)?;
        }
        Ok(self.events)
    }
}
