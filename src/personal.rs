//! Raw personal numbers (SPEC §1: "the chain holds no raw ID or card
//! numbers"): the one place that decides what looks like a citizen ID number
//! (GB 11643-1999) or a bank card number, so that such a number can enter
//! neither an id nor a free-text field of a payload, nor an error message.
//!
//! Owns: the shapes refused and the redaction of echoed input.
//! Never: sees peppers or digests; it only looks at text.
//!
//! Two strengths, because the fields differ:
//!
//! - **Free text** (`memo`, `budget_ref`, `doc_ref`, names, reasons, notes…)
//!   has no business holding a long number, so it is refused on shape alone:
//!   a run of 16 or more digits, or 17 digits and `X` (an ID number, even one
//!   with a wrong check character, is still a person's number), full-width
//!   digits counted as digits; and a card written in groups of four
//!   (`6228 4804 0256 4890 018`, spaces or hyphens) when the digits pass Luhn.
//! - **Ids** (`household_id`, `payee_id`, event ids…) are machine-made and
//!   may legitimately be long digit strings (an enterprise credit code, a
//!   hash): there only 18 characters that *are* a valid ID number (a birth
//!   date in 1900–2099 and the right check character) or a 16–19 digit run
//!   passing Luhn is refused.

/// GB 11643-1999: an ID number has 17 digits and a check character.
pub const ID_NUMBER_CHARS: usize = 18;
/// Bank card numbers (ISO/IEC 7812 as issued in China) have 16–19 digits.
pub const CARD_DIGITS: std::ops::RangeInclusive<usize> = 16..=19;
/// GB 11643-1999 §4.2: weights of the 17 body digits, and the check
/// character for each value of (Σ weight × digit) mod 11.
const GB11643_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const GB11643_CHECK_CHARS: &[u8; 11] = b"10X98765432";
/// Runs of at least this many digits are replaced when input is echoed.
const REDACT_DIGITS_MIN: usize = 12;

/// What a text was found to hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    IdNumber,
    CardNumber,
}

impl Found {
    pub fn describe(self) -> &'static str {
        match self {
            Found::IdNumber => "what looks like a raw ID number (身份证号)",
            Found::CardNumber => "what looks like a raw bank card number (银行卡号)",
        }
    }
}

/// The GB 11643-1999 check character of 17 body digits.
pub fn gb11643_check_char(body: &[u8; 17]) -> u8 {
    let sum: u32 = body.iter().zip(GB11643_WEIGHTS).map(|(d, w)| u32::from(d - b'0') * w).sum();
    GB11643_CHECK_CHARS[(sum % 11) as usize]
}

/// The Luhn check (ISO/IEC 7812-1 Annex B) over ASCII digits.
pub fn luhn_valid(digits: &str) -> bool {
    let mut sum = 0u32;
    for (i, byte) in digits.bytes().rev().enumerate() {
        if !byte.is_ascii_digit() {
            return false;
        }
        let mut d = u32::from(byte - b'0');
        if i % 2 == 1 {
            d *= 2;
            if d > 9 {
                d -= 9;
            }
        }
        sum += d;
    }
    !digits.is_empty() && sum % 10 == 0
}

/// Whether 18 ASCII characters are a valid ID number: 17 digits, a real
/// birth date at 7–14, and the right check character (`X` or `x`).
pub fn is_valid_id_number(text: &[u8]) -> bool {
    let Ok(body) = <&[u8; 17]>::try_from(text.get(..17).unwrap_or_default()) else {
        return false;
    };
    if text.len() != ID_NUMBER_CHARS || !body.iter().all(u8::is_ascii_digit) {
        return false;
    }
    let number = |range: std::ops::Range<usize>| body[range].iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
    let year = number(6..10);
    let birth = crate::date::Date::from_ymd(year as i32, number(10..12), number(12..14));
    (1900..=2099).contains(&year) && birth.is_some() && gb11643_check_char(body) == text[17].to_ascii_uppercase()
}

fn ascii_digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8),
        '０'..='９' => Some(b'0' + (c as u32 - '０' as u32) as u8),
        _ => None,
    }
}

/// Maximal runs of digits in a text (full-width digits as ASCII), each with
/// the character that follows it.
fn digit_runs(text: &str) -> Vec<(String, Option<char>)> {
    let mut runs = Vec::new();
    let mut run = String::new();
    for c in text.chars() {
        match ascii_digit(c) {
            Some(d) => run.push(d as char),
            None => {
                if !run.is_empty() {
                    runs.push((std::mem::take(&mut run), Some(c)));
                }
            }
        }
    }
    if !run.is_empty() {
        runs.push((run, None));
    }
    runs
}

/// Card numbers printed in groups of four: `dddd dddd dddd dddd[ d{1,3}]`
/// with single spaces (ASCII or ideographic) or hyphens between groups.
fn grouped_card(text: &str) -> bool {
    let chars: Vec<char> = text.chars().collect();
    let mut start = 0;
    while start < chars.len() {
        let at_group_start =
            ascii_digit(chars[start]).is_some() && (start == 0 || ascii_digit(chars[start - 1]).is_none());
        if at_group_start {
            let mut digits = String::new();
            let mut groups = 0;
            let mut last_group;
            let mut i = start;
            loop {
                let group_start = i;
                while i < chars.len() {
                    match ascii_digit(chars[i]) {
                        Some(d) => digits.push(d as char),
                        None => break,
                    }
                    i += 1;
                }
                groups += 1;
                last_group = i - group_start;
                let separator = i + 1 < chars.len()
                    && matches!(chars[i], ' ' | '-' | '\u{3000}')
                    && ascii_digit(chars[i + 1]).is_some();
                if last_group == 4 && separator {
                    i += 1;
                    continue;
                }
                break;
            }
            // Every group but the last has 4 digits; the last 1–4.
            let shaped = groups >= 4 && last_group <= 4;
            if shaped && CARD_DIGITS.contains(&digits.len()) && luhn_valid(&digits) {
                return true;
            }
        }
        start += 1;
    }
    false
}

/// Every shape refused here holds at least 16 digits (a card's fewest; an ID
/// number has 17 and a check character), so a text with fewer — nearly
/// every id and text of every event — is passed without scanning its runs.
/// This runs on every id and text field a payload parse meets.
fn enough_digits(text: &str) -> bool {
    text.chars().filter(|c| ascii_digit(*c).is_some()).nth(*CARD_DIGITS.start() - 1).is_some()
}

/// Free text: refused on shape (see the module documentation).
pub fn find_in_text(text: &str) -> Option<Found> {
    if !enough_digits(text) {
        return None;
    }
    for (run, next) in digit_runs(text) {
        if run.len() == ID_NUMBER_CHARS || run.len() == 17 && matches!(next, Some('X' | 'x' | 'Ｘ' | 'ｘ')) {
            return Some(Found::IdNumber);
        }
        // Any longer run holds a card-length number too.
        if run.len() >= *CARD_DIGITS.start() {
            return Some(Found::CardNumber);
        }
    }
    grouped_card(text).then_some(Found::CardNumber)
}

/// Ids: refused only for a valid ID number (any 18 characters in a row) or
/// a run of 16–19 digits (or groups of four joined by `-`) passing Luhn.
pub fn find_in_id(text: &str) -> Option<Found> {
    if !enough_digits(text) {
        return None;
    }
    if text.as_bytes().windows(ID_NUMBER_CHARS).any(is_valid_id_number) {
        return Some(Found::IdNumber);
    }
    let card = digit_runs(text).into_iter().any(|(run, _)| CARD_DIGITS.contains(&run.len()) && luhn_valid(&run));
    (card || grouped_card(text)).then_some(Found::CardNumber)
}

/// Input echoed in an error message with the digits of every long number
/// replaced by `#`: a span of digits, possibly split by single spaces or
/// hyphens (`6228 4804 …`), holding 12 or more digits. So a refused ID or
/// card number is never printed, logged or sent back.
pub fn redact(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < chars.len() {
        if ascii_digit(chars[i]).is_none() {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The span: digits, and single separators with a digit after them.
        let start = i;
        let mut digits = 0;
        while i < chars.len() {
            if ascii_digit(chars[i]).is_some() {
                digits += 1;
                i += 1;
            } else if matches!(chars[i], ' ' | '-' | '\u{3000}')
                && chars.get(i + 1).is_some_and(|c| ascii_digit(*c).is_some())
            {
                i += 1;
            } else {
                break;
            }
        }
        for c in &chars[start..i] {
            out.push(if digits >= REDACT_DIGITS_MIN && ascii_digit(*c).is_some() { '#' } else { *c });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_text_refuses_id_and_card_shapes() {
        // Goal: every way a clerk might paste an ID or card number into free text is refused.
        for text in [
            "身份证 110105194912310021",
            "11010519491231002X",
            "ID:11010519491231002x;",
            "身份证１１０１０５１９４９１２３１００２１",
            "卡号6228480402564890018",
            "6217001234567890",
            "card 6228 4804 0256 4890 018 paid",
            "6228-4804-0256-4890-018",
            "110105194912310022",      // wrong check character: still a person's number
            "12345678901234567890123", // longer than a card, holds one
        ] {
            assert!(find_in_text(text).is_some(), "{text}");
        }
    }

    #[test]
    fn free_text_keeps_ordinary_numbers() {
        // Goal: document numbers, dates, amounts and region codes pass.
        for text in [
            "财农〔2019〕12号",
            "2019-01-01 to 2019-12-31",
            "region 422822101201, 1,234,567 yuan",
            "3333 4444",           // two groups: not a card
            "batch 202501150001",  // 12 digits
            "2019 2020 2021 2022", // four years, fails Luhn
            "",
        ] {
            assert_eq!(find_in_text(text), None, "{text}");
        }
    }

    #[test]
    fn ids_refuse_only_valid_numbers() {
        // Goal: ids may be long digit strings, but not a real ID or card number.
        assert_eq!(find_in_id("h-11010519491231002X"), Some(Found::IdNumber));
        assert_eq!(find_in_id("h-11010519491231002x-1"), Some(Found::IdNumber));
        assert_eq!(find_in_id("h-110105194912310021"), None, "wrong check character, fails Luhn");
        assert_eq!(find_in_id("po-6228480402564890018"), Some(Found::CardNumber));
        assert_eq!(find_in_id("4111111111111111"), Some(Found::CardNumber));
        assert_eq!(find_in_id("4111111111111112"), None);
        assert_eq!(find_in_id("c-6228-4804-0256-4890-018"), Some(Found::CardNumber));
        // Found by the province generator: a year, then a 12-digit village code (16 digits, Luhn-valid).
        assert_eq!(find_in_id("notice-420121-industry-2020-420121100202"), None);
        assert_eq!(find_in_id("422822101201-0001"), None);
        assert_eq!(find_in_id("913201001234567890"), None, "a credit code, not an ID or card");
    }

    #[test]
    fn checks_match_published_examples() {
        // Goal: GB 11643 and Luhn agree with published worked examples.
        assert_eq!(gb11643_check_char(b"11010519491231002"), b'X');
        assert!(is_valid_id_number(b"11010519491231002X"));
        assert!(is_valid_id_number(b"11010519491231002x"));
        assert!(!is_valid_id_number(b"110105194913310021"), "month 13");
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid(""));
    }

    #[test]
    fn redaction_hides_long_digit_runs() {
        // Goal: echoed input never carries a number that could be an ID or card.
        assert_eq!(redact("x 110105194912310021 y"), "x ################## y");
        assert_eq!(redact("doc 2019-12 ok"), "doc 2019-12 ok");
        assert_eq!(redact("１２３４５６７８９０１２"), "############");
        assert_eq!(redact("card 6228 4804 0256 4890 018."), "card #### #### #### #### ###.");
        assert_eq!(redact("2019-01-01 - 2019-12-31"), "2019-01-01 - 2019-12-31");
    }
}
