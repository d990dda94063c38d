//! Amounts in yuan as clerks and banks write them (`300`, `300.00`,
//! `¥1,200.50`, full-width digits) to exact fen, by decimal parsing: no
//! floating point anywhere.
//!
//! Owns: what a yuan amount may look like. Never: rounds. A third decimal
//! place is an error, because fen is the smallest unit that is paid.

use super::identity::to_half_width;
use crate::payload::AMOUNT_FEN_MAX;
use std::fmt;

/// An amount text longer than this is not an amount (the largest is 16 digits
/// plus separators and decimals).
pub const AMOUNT_CHARS_MAX: usize = 40;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AmountError {
    Empty,
    /// Not a plain decimal (letters, signs, exponents, misplaced separators).
    NotDecimal,
    /// Thousands separators not in groups of three (`1,20` is not an amount).
    Grouping,
    /// More than two decimal places.
    ThirdDecimal,
    /// Zero: nothing to pay.
    Zero,
    /// Beyond 2^53−1 fen.
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AmountError::Empty => "no amount",
            AmountError::NotDecimal => "not an amount in yuan like 300, 300.00 or ¥1,200.50",
            AmountError::Grouping => "thousands separators must group three digits (1,200.50)",
            AmountError::ThirdDecimal => "an amount in yuan has at most two decimal places (fen)",
            AmountError::Zero => "the amount is zero",
            AmountError::TooLarge => "the amount is too large",
        })
    }
}

/// Parses yuan to fen: optional `¥`/`￥` before and `元` after, `,` between
/// groups of three digits, at most two decimals.
pub fn parse_yuan(raw: &str) -> Result<u64, AmountError> {
    if raw.chars().count() > AMOUNT_CHARS_MAX {
        return Err(AmountError::NotDecimal);
    }
    let half = to_half_width(raw).replace('\u{FFE5}', "¥");
    let mut text = half.trim();
    text = text.strip_prefix('¥').unwrap_or(text).trim_start();
    text = text.strip_suffix('元').unwrap_or(text).trim_end();
    if text.is_empty() {
        return Err(AmountError::Empty);
    }
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (text, ""),
    };
    if whole.is_empty() || (text.contains('.') && fraction.is_empty()) {
        return Err(AmountError::NotDecimal);
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::NotDecimal);
    }
    if fraction.len() > 2 {
        return Err(AmountError::ThirdDecimal);
    }
    let digits = whole_digits(whole)?;
    let mut fen: u64 = 0;
    for byte in digits.bytes().chain(format!("{fraction:0<2}").bytes()) {
        fen = fen.checked_mul(10).and_then(|f| f.checked_add(u64::from(byte - b'0'))).ok_or(AmountError::TooLarge)?;
    }
    match fen {
        0 => Err(AmountError::Zero),
        f if f > AMOUNT_FEN_MAX => Err(AmountError::TooLarge),
        f => Ok(f),
    }
}

/// The digits of the whole part, checking thousands grouping if any.
fn whole_digits(whole: &str) -> Result<String, AmountError> {
    if !whole.bytes().all(|b| b.is_ascii_digit() || b == b',') {
        return Err(AmountError::NotDecimal);
    }
    if whole.contains(',') {
        let groups: Vec<&str> = whole.split(',').collect();
        let first_ok = (1..=3).contains(&groups[0].len());
        if !first_ok || groups[1..].iter().any(|g| g.len() != 3) {
            return Err(AmountError::Grouping);
        }
    }
    Ok(whole.replace(',', ""))
}

/// Fen as yuan with two decimals (for previews).
pub fn yuan(fen: u64) -> String {
    format!("{}.{:02}", fen / 100, fen % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(raw: &str, expected: Result<u64, AmountError>) {
        assert_eq!(parse_yuan(raw), expected, "{raw:?}");
    }

    #[test]
    fn yuan_parse_exactly() {
        // Goal: every way clerks and banks write yuan gives exact fen; anything doubtful is refused.
        check("300", Ok(30000));
        check("300.00", Ok(30000));
        check("300.5", Ok(30050));
        check("¥1,200.50", Ok(120050));
        check("￥1,200.50元", Ok(120050));
        check(" ３００．０５ ", Ok(30005));
        check("1,234,567.89", Ok(123456789));
        check("0.01", Ok(1));
        check("90071992547409.91", Ok(9007199254740991));
        check("90071992547409.92", Err(AmountError::TooLarge));
        check("99999999999999999999999", Err(AmountError::TooLarge));
        check("300.005", Err(AmountError::ThirdDecimal));
        check("300.000", Err(AmountError::ThirdDecimal));
        check("1,20", Err(AmountError::Grouping));
        check("1200,50", Err(AmountError::Grouping));
        check(",200", Err(AmountError::Grouping));
        check("0", Err(AmountError::Zero));
        check("0.00", Err(AmountError::Zero));
        check("-300", Err(AmountError::NotDecimal));
        check("3e2", Err(AmountError::NotDecimal));
        check("300.", Err(AmountError::NotDecimal));
        check(".5", Err(AmountError::NotDecimal));
        check("1.2.3", Err(AmountError::NotDecimal));
        check("", Err(AmountError::Empty));
        check("¥", Err(AmountError::Empty));
        assert_eq!(yuan(120050), "1200.50");
    }
}
