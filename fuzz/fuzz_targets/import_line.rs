#![no_main]
//! Fuzz target: sunledger::fuzz_entry::import_line must never panic on any input.

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sunledger::fuzz_entry::import_line(data);
});
