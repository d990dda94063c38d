//! Projections (SPEC §7): pure folds over the chain — fund accounts with FIFO
//! lots, per office and program flows, households, projects — kept up to date
//! as events are appended and snapshotted with the validator state.
//!
//! Owns: everything the misuse rules and the reports read. Never: does I/O.

use crate::payload::Payload;
use crate::state::State;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Projections {}

impl Projections {
    /// Folds one accepted event in. Called after `State::apply` of the same
    /// event, so `state` already includes it.
    pub fn apply(&mut self, _seq: u64, _payload: &Payload, _state: &State) {}
}
