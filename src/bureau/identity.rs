//! Personal identifiers on the registrar's machine (SPEC §1, §9): ID numbers
//! (GB 11643-1999 citizen identity numbers) and bank card numbers are
//! normalised and checked, turned into keyed digests, and masked.
//!
//! Owns: the exact bytes that are MACed, and the one masking rule.
//!
//! - `person_digest` = lowercase hex of HMAC-SHA256(pepper, the 18 ASCII bytes
//!   of the normalised ID number), e.g. the bytes of `11010519491231002X`
//!   (upper-case `X`, no whitespace, no terminator).
//! - `card_digest` = lowercase hex of HMAC-SHA256(pepper, the ASCII decimal
//!   digits of the normalised card number), e.g. `6228480000000000000`.
//!
//! Never: puts a raw identifier in an error, a `Debug` output or a log line.
//! Errors say what is wrong with a value, never what the value was.

use super::pepper::Pepper;
pub use crate::personal::{gb11643_check_char, luhn_valid};
use std::fmt;

/// GB 11643-1999: an ID number has 17 digits and a check character.
pub const ID_CHARS: usize = 18;
/// Card numbers the masked form can carry: the validator wants 4 digits,
/// 4–15 `*` and 4 digits (SPEC §1, `payload::MaskedCard`).
pub const CARD_DIGITS_MIN: usize = 12;
pub const CARD_DIGITS_MAX: usize = 23;
/// A name longer than this is not a person's name (the longest transliterated
/// minority names run to about 20 characters).
pub const NAME_CHARS_MAX: usize = 40;

/// Why a value is not an ID number. Carries no part of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdError {
    /// Nothing in the cell.
    Empty,
    /// Not 18 characters after normalisation (the count is shown).
    Length(usize),
    /// The first 17 characters must be digits, the last a digit or `X`.
    NotDigits,
    /// The 8 birth-date digits (positions 7–14) are not a real date.
    BirthDate,
    /// The check character does not match the other 17 (GB 11643 §4.2).
    CheckDigit,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdError::Empty => f.write_str("no ID number"),
            IdError::Length(n) => write!(f, "an ID number has 18 characters, this has {n}"),
            IdError::NotDigits => f.write_str("an ID number is 17 digits and a digit or X"),
            IdError::BirthDate => f.write_str("the birth date in the ID number (digits 7-14) does not exist"),
            IdError::CheckDigit => f.write_str("the ID number's check digit (GB 11643) does not match"),
        }
    }
}

/// Why a value is not a card number. Carries no part of the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardError {
    Empty,
    /// Something other than digits, spaces or hyphens.
    NotDigits,
    /// Fewer than 12 or more than 23 digits (the count is shown).
    Length(usize),
    /// The Luhn check digit does not match (ISO/IEC 7812-1 Annex B).
    Luhn,
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CardError::Empty => f.write_str("no card number"),
            CardError::NotDigits => f.write_str("a card number holds only digits (spaces and hyphens are ignored)"),
            CardError::Length(n) => {
                write!(f, "a card number has {CARD_DIGITS_MIN}-{CARD_DIGITS_MAX} digits, this has {n}")
            }
            CardError::Luhn => f.write_str(
                "the card number fails the Luhn check (a typo?); if this bank's cards do not use Luhn, \
                 pass --no-luhn-bank with the bank's name",
            ),
        }
    }
}

/// Why a value is not a name that can be masked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameError {
    Empty,
    /// ASCII digits in a name: most likely an ID or card number in the wrong column.
    Digits,
    TooLong,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => f.write_str("no name"),
            NameError::Digits => f.write_str("a name holds no digits (is a number in the wrong column?)"),
            NameError::TooLong => write!(f, "a name has at most {NAME_CHARS_MAX} characters"),
        }
    }
}

/// A checked, normalised ID number. Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdNumber(String);

/// A checked card number (digits only). Its `Debug` shows only its mask.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct CardNumber(String);

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdNumber(<redacted>)")
    }
}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({})", self.masked())
    }
}

/// Maps full-width forms (U+FF01..U+FF5E) to ASCII, the ideographic space to
/// a space, and drops the zero-width characters spreadsheets leave behind.
pub fn to_half_width(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '\u{200B}' | '\u{FEFF}' | '\u{2060}'))
        .map(|c| match c {
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFF01 + 0x21).unwrap_or(c),
            '\u{3000}' => ' ',
            _ => c,
        })
        .collect()
}

/// Removes what spreadsheets and bank exports wrap around a number kept as
/// text: surrounding whitespace, a leading `'` (Excel), tabs, `="…"`.
fn strip_text_markers(text: &str) -> &str {
    let mut text = text.trim();
    if let Some(inner) = text.strip_prefix("=\"").and_then(|t| t.strip_suffix('"')) {
        text = inner.trim();
    }
    text.strip_prefix('\'').unwrap_or(text).trim()
}

/// Normalises (trim, full-width to ASCII, `x` to `X`) and checks an ID number.
pub fn check_id(raw: &str) -> Result<IdNumber, IdError> {
    let half = to_half_width(raw);
    let text = strip_text_markers(&half).replace('x', "X");
    if text.is_empty() {
        return Err(IdError::Empty);
    }
    let length = text.chars().count();
    if length != ID_CHARS {
        return Err(IdError::Length(length));
    }
    let bytes = text.as_bytes();
    let body: &[u8; 17] = bytes[..17].try_into().map_err(|_| IdError::NotDigits)?;
    if !body.iter().all(u8::is_ascii_digit) || !(bytes[17].is_ascii_digit() || bytes[17] == b'X') {
        return Err(IdError::NotDigits);
    }
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().unwrap_or(0);
    if crate::date::Date::from_ymd(number(6..10) as i32, number(10..12), number(12..14)).is_none() {
        return Err(IdError::BirthDate);
    }
    if gb11643_check_char(body) != bytes[17] {
        return Err(IdError::CheckDigit);
    }
    Ok(IdNumber(text))
}

/// Whether a text holds a valid ID number anywhere (18 characters in a row
/// that pass every check): such a text must not become an id or free text
/// on the chain, however it was meant (some villages number households by
/// the head's ID number).
pub fn contains_id_number(text: &str) -> bool {
    let normal: Vec<char> = to_half_width(text).replace('x', "X").chars().collect();
    normal.windows(ID_CHARS).any(|window| check_id(&window.iter().collect::<String>()).is_ok())
}

/// Normalises a card number to its digits (spaces and hyphens dropped,
/// full-width digits to ASCII) and checks its length, and Luhn if asked.
pub fn check_card(raw: &str, luhn: bool) -> Result<CardNumber, CardError> {
    let half = to_half_width(raw);
    let text = strip_text_markers(&half);
    if text.is_empty() {
        return Err(CardError::Empty);
    }
    let mut digits = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '\t' => {}
            _ => return Err(CardError::NotDigits),
        }
    }
    if !(CARD_DIGITS_MIN..=CARD_DIGITS_MAX).contains(&digits.len()) {
        return Err(CardError::Length(digits.len()));
    }
    if luhn && !luhn_valid(&digits) {
        return Err(CardError::Luhn);
    }
    Ok(CardNumber(digits))
}

impl IdNumber {
    /// `person_digest`: HMAC-SHA256(pepper, the 18 ASCII bytes), lowercase hex.
    pub fn digest(&self, pepper: &Pepper) -> String {
        crate::encoding::hex(&pepper.mac(self.0.as_bytes()))
    }
}

impl CardNumber {
    /// `card_digest`: HMAC-SHA256(pepper, the ASCII digits), lowercase hex.
    pub fn digest(&self, pepper: &Pepper) -> String {
        crate::encoding::hex(&pepper.mac(self.0.as_bytes()))
    }

    /// First 4 and last 4 digits, `*` for each digit between (`6228********1234`).
    pub fn masked(&self) -> String {
        let digits = self.0.as_str();
        let hidden = digits.len() - 8;
        assert!((4..=15).contains(&hidden), "card length was checked");
        format!("{}{}{}", &digits[..4], "*".repeat(hidden), &digits[digits.len() - 4..])
    }
}

/// A person's name as written, without surrounding or inner whitespace.
fn normalise_name(raw: &str) -> String {
    to_half_width(raw).chars().filter(|c| !c.is_whitespace()).collect()
}

/// The one masking rule (SPEC §9): keep the first character and, for three
/// or more characters, the last; every other character becomes `*`
/// (`张*`, `张*丰`, `欧**明`). A one-character name becomes `X*`, so the mask
/// never shows a whole name.
pub fn mask_name(raw: &str) -> Result<String, NameError> {
    let name: Vec<char> = normalise_name(raw).chars().collect();
    match name.len() {
        0 => return Err(NameError::Empty),
        n if n > NAME_CHARS_MAX => return Err(NameError::TooLong),
        _ => {}
    }
    if name.iter().any(char::is_ascii_digit) {
        return Err(NameError::Digits);
    }
    let masked: String = match name.len() {
        1 | 2 => format!("{}*", name[0]),
        n => format!("{}{}{}", name[0], "*".repeat(n - 2), name[n - 1]),
    };
    Ok(masked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_id_case(raw: &str, expected: Result<&str, IdError>) {
        let got = check_id(raw).map(|id| id.0);
        assert_eq!(got.as_deref().map_err(|e| *e), expected, "{raw:?}");
    }

    #[test]
    fn gb11643_published_examples() {
        // Goal: the standard's own example number passes, and each kind of damage is named.
        check_id_case("11010519491231002X", Ok("11010519491231002X"));
        check_id_case("11010519491231002x", Ok("11010519491231002X"));
        check_id_case("  １１０１０５１９４９１２３１００２ｘ\t", Ok("11010519491231002X"));
        check_id_case("'11010519491231002X", Ok("11010519491231002X"));
        check_id_case("=\"11010519491231002X\"", Ok("11010519491231002X"));
        // A widely published example with a valid check digit; its birth year
        // 1880 lies before the ledger's date range (1900), so it is refused.
        check_id_case("440524188001010014", Err(IdError::BirthDate));
        check_id_case("110105194912310021", Err(IdError::CheckDigit));
        check_id_case("11010519491331002X", Err(IdError::BirthDate));
        check_id_case("11010519490230002X", Err(IdError::BirthDate));
        check_id_case("1101051949123100", Err(IdError::Length(16)));
        check_id_case("1101051949123100X2", Err(IdError::NotDigits));
        check_id_case("", Err(IdError::Empty));
        check_id_case("4.22822E+17", Err(IdError::Length(11)));
        assert_eq!(gb11643_check_char(b"11010519491231002"), b'X');
        assert!(contains_id_number("h-11010519491231002x-1"));
        assert!(!contains_id_number("422822101201-0001"));
        assert!(!contains_id_number("110105194912310021"));
    }

    #[test]
    fn luhn_published_examples() {
        // Goal: Luhn agrees with the classic example 79927398713 and refuses each single-digit change.
        assert!(luhn_valid("79927398713"));
        for last in ['0', '1', '2', '4', '5', '6', '7', '8', '9'] {
            assert!(!luhn_valid(&format!("7992739871{last}")), "{last}");
        }
        assert!(luhn_valid("4111111111111111"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn cards_normalise_to_digits() {
        // Goal: grouping and full-width digits are dropped; length and Luhn are checked when asked.
        let card = check_card(" ６２２８ 4800-0000 0000 000 ", false).unwrap();
        assert_eq!(card.0, "6228480000000000000");
        assert_eq!(card.masked(), "6228***********0000");
        assert_eq!(check_card("4111 1111 1111 1111", true).unwrap().masked(), "4111********1111");
        assert_eq!(check_card("4111 1111 1111 1112", true).err(), Some(CardError::Luhn));
        assert!(check_card("4111 1111 1111 1112", false).is_ok());
        assert_eq!(check_card("12345678901", false).err(), Some(CardError::Length(11)));
        assert_eq!(check_card("6228a80000000000", false).err(), Some(CardError::NotDigits));
        assert_eq!(check_card("  ", false).err(), Some(CardError::Empty));
        assert!(!format!("{:?}", check_card("4111111111111111", true).unwrap()).contains("41111111"));
    }

    #[test]
    fn names_mask_by_one_rule() {
        // Goal: SPEC §9's examples, and masks that always hide something and never hold digits.
        for (name, mask) in
            [("张三", "张*"), ("张三丰", "张*丰"), ("欧阳小明", "欧**明"), (" 张 三 ", "张*"), ("张", "张*")]
        {
            assert_eq!(mask_name(name).as_deref(), Ok(mask), "{name}");
        }
        assert_eq!(mask_name("  "), Err(NameError::Empty));
        assert_eq!(mask_name("4228221"), Err(NameError::Digits));
        assert_eq!(mask_name("张１"), Err(NameError::Digits));
    }

    #[test]
    fn digests_are_hmac_of_the_normalised_bytes() {
        // Goal: the digest is HMAC-SHA256 over exactly the normalised ASCII bytes, however the input was written.
        use hmac::Mac;
        let pepper = Pepper::from_bytes([7; 32]);
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"11010519491231002X");
        let expected = crate::encoding::hex(&mac.finalize().into_bytes());
        assert_eq!(check_id("11010519491231002x").unwrap().digest(&pepper), expected);
        assert_eq!(check_id("１１０１０５１９４９１２３１００２X").unwrap().digest(&pepper), expected);
        assert_ne!(check_id("11010519491231002X").unwrap().digest(&Pepper::from_bytes([8; 32])), expected);
    }
}
