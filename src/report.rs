//! Reports for people and machines over the projections: flags, accounts,
//! households, fund-flow summaries, and the rebuild check (issue 3).

use crate::ledger::Ledger;
use std::path::Path;

pub type CommandResult = Result<i32, String>;

/// `sunledger flags`.
pub fn flags(
    _ledger: &Ledger,
    _json: bool,
    _rule: Option<&str>,
    _office: Option<&str>,
    _policy: Option<&Path>,
) -> CommandResult {
    Err("flags: not built yet".into())
}

/// `sunledger account OFFICE/PROGRAM`.
pub fn account(_ledger: &Ledger, _account: &str, _json: bool) -> CommandResult {
    Err("account: not built yet".into())
}

/// `sunledger household ID`.
pub fn household(_ledger: &Ledger, _household_id: &str, _json: bool, _policy: Option<&Path>) -> CommandResult {
    Err("household: not built yet".into())
}

/// `sunledger summary`.
pub fn summary(_ledger: &Ledger, _office: Option<&str>, _json: bool) -> CommandResult {
    Err("summary: not built yet".into())
}

/// `sunledger rebuild`: recompute every projection from the chain and
/// compare with the stored one.
pub fn rebuild(_ledger: &Ledger) -> CommandResult {
    Err("rebuild: not built yet".into())
}
