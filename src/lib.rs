//! sunledger: a signed, hash-chained ledger for poverty-relief funds.
//!
//! See ARCHITECTURE.md for the code map and invariants.

pub mod chain;
pub mod cli;
pub mod crypto;
pub mod date;
pub mod encoding;
pub mod envelope;
pub mod error;
pub mod generate;
pub mod keys;
pub mod ledger;
pub mod lines;
pub mod payload;
pub mod projection;
pub mod report;
pub mod state;
pub mod store;
pub mod validate;
pub mod verify;
