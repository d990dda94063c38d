//! sunledger: a signed, hash-chained ledger for poverty-relief funds.
//!
//! See ARCHITECTURE.md for the code map and invariants.

pub mod bureau;
pub mod chain;
pub mod checkpoint;
pub mod cli;
pub mod crypto;
pub mod date;
pub mod demo;
pub mod encoding;
pub mod envelope;
pub mod error;
pub mod fuzz_entry;
pub mod generate;
pub mod households;
pub mod http_client;
pub mod idtable;
pub mod keys;
pub mod ledger;
pub mod lines;
pub mod merkle;
pub mod notice;
pub mod payload;
pub mod personal;
pub mod policy;
pub mod process;
pub mod projection;
pub mod report;
pub mod rules;
pub mod server;
pub mod state;
pub mod store;
pub mod sym;
pub mod validate;
pub mod verify;
