//! What a payout roster is checked against: each household's members, dead
//! members, bound card and status, folded from the chain's
//! `household_register` and `household_update` events in ledger order.
//!
//! Boundary: a read-only fold over public chain data (digests only), used for
//! previews and pre-checks. `State` knows only that a household exists; when
//! the projections (SPEC §7) expose households, this fold should read them
//! instead. The status is the latest in ledger order, not "as of `at`" as
//! the `ineligible_household` rule judges it.

use crate::ledger::Ledger;
use crate::payload::{parse_payload, Body, HouseholdStatus};
use std::collections::{BTreeSet, HashMap};

#[derive(Clone, Debug)]
pub struct HouseholdFacts {
    pub members: BTreeSet<String>,
    pub deceased: BTreeSet<String>,
    pub card_digest: String,
    pub status: HouseholdStatus,
}

#[derive(Default)]
pub struct LedgerView {
    pub households: HashMap<String, HouseholdFacts>,
}

impl LedgerView {
    /// Folds every household event of the ledger (one pass over the chain).
    pub fn scan(ledger: &Ledger) -> Result<LedgerView, String> {
        let mut view = LedgerView::default();
        for record in ledger.store().records_from(0) {
            let record = record.map_err(|e| e.to_string())?;
            let envelope = crate::envelope::Envelope::parse(&record.envelope_bytes)
                .map_err(|e| format!("stored record {} is damaged: {e}", record.seq))?;
            let payload = parse_payload(&envelope.payload)
                .map_err(|e| format!("stored record {} is damaged: {e}", record.seq))?;
            view.apply(&payload.body);
        }
        Ok(view)
    }

    fn apply(&mut self, body: &Body) {
        match body {
            Body::HouseholdRegister(b) => {
                let facts = HouseholdFacts {
                    members: b.members.iter().map(|m| m.person_digest.0.clone()).collect(),
                    deceased: BTreeSet::new(),
                    card_digest: b.card.card_digest.0.clone(),
                    status: HouseholdStatus::Enrolled,
                };
                self.households.insert(b.household_id.0.clone(), facts);
            }
            Body::HouseholdUpdate(b) => {
                let Some(facts) = self.households.get_mut(b.household_id.as_str()) else { return };
                if let Some(status) = b.status {
                    facts.status = status;
                }
                if let Some(card) = &b.card {
                    facts.card_digest = card.card_digest.0.clone();
                }
                for member in b.add_members.iter().flatten() {
                    facts.members.insert(member.person_digest.0.clone());
                }
                for digest in b.remove_members.iter().flatten() {
                    facts.members.remove(digest.as_str());
                }
                facts.deceased.extend(b.deceased.iter().flatten().map(|d| d.0.clone()));
            }
            _ => {}
        }
    }

    /// Households (not removed) that list this person as a member, sorted.
    pub fn households_of(&self, person_digest: &str) -> Vec<&str> {
        let mut found: Vec<&str> = self
            .households
            .iter()
            .filter(|(_, f)| f.status != HouseholdStatus::Removed && f.members.contains(person_digest))
            .map(|(id, _)| id.as_str())
            .collect();
        found.sort_unstable();
        found
    }
}
