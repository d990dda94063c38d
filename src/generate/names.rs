//! Synthetic people, cards, places and enterprises, and the SPEC §9 masks.
//!
//! Owns: what a generated name, ID number, card number or credit code looks
//! like. Invariant: raw ID and card numbers exist only here, in memory, as
//! HMAC input; the chain sees digests and masks. Never: uses a real person's
//! data (all numbers are drawn from the seeded stream).

use super::random::Rng;

/// Common surnames (百家姓, by frequency in rural Hubei registers).
const SURNAMES: [&str; 60] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高", "林",
    "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁", "潘", "向",
    "蒋", "蔡", "余", "杜", "叶", "程", "谭", "覃", "黎", "贺", "龚", "邵", "万", "严", "熊", "秦", "邱", "江", "尹",
    "雷", "侯", "龙",
];
/// Compound surnames, drawn rarely; they make four-character names (`欧**明`).
const COMPOUND_SURNAMES: [&str; 4] = ["欧阳", "司马", "上官", "诸葛"];
const GIVEN_CHARACTERS: [&str; 48] = [
    "伟", "芳", "娜", "秀", "英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超",
    "兰", "霞", "平", "刚", "桂", "华", "建", "国", "红", "梅", "玉", "春", "花", "德", "志", "海", "燕", "文", "荣",
    "福", "贵", "翠", "菊", "云", "山", "林", "松", "先", "友",
];
/// Syllables for place names (乡镇、村、县).
const PLACE_CHARACTERS: [&str; 48] = [
    "茶", "山", "河", "坪", "坝", "溪", "岭", "湾", "岩", "沟", "桥", "口", "塘", "园", "峰", "龙", "凤", "花", "石",
    "竹", "柏", "杨", "桃", "高", "长", "新", "金", "青", "白", "红", "黄", "马", "鹤", "云", "雾", "天", "星", "月",
    "松", "梨", "板", "庙", "关", "堡", "寨", "垭", "槽", "营",
];
/// Banks that issue the 一卡通 (social-assistance card), with a card BIN.
pub const BANKS: [(&str, &str); 4] =
    [("湖北农信", "621098"), ("邮储银行", "621799"), ("农业银行", "622848"), ("建设银行", "621700")];
/// GB 32100-2015 characters of a unified social credit code (no I, O, S, V, Z).
const CREDIT_CODE_CHARACTERS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_CODE_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
/// GB 11643-1999 (ISO 7064 MOD 11-2) weights and check characters of an ID number.
const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK_CHARACTERS: &[u8; 11] = b"10X98765432";

/// A full name: one- or two-character surname and one or two given characters.
pub fn person_name(rng: &mut Rng, surname: Option<&str>) -> String {
    let surname = match surname {
        Some(s) => s.to_string(),
        None if rng.chance(15) => rng.pick(&COMPOUND_SURNAMES).to_string(),
        None => rng.pick(&SURNAMES).to_string(),
    };
    let given_count = if rng.chance(700) { 2 } else { 1 };
    let given: String = (0..given_count).map(|_| *rng.pick(&GIVEN_CHARACTERS)).collect();
    surname + &given
}

/// The surname part of a generated name (compound surnames are two characters).
pub fn surname_of(name: &str) -> String {
    let compound = COMPOUND_SURNAMES.iter().find(|s| name.starts_with(*s));
    match compound {
        Some(s) => s.to_string(),
        None => name.chars().take(1).collect(),
    }
}

/// SPEC §9: keep the first character and, for three or more, the last.
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    assert!(chars.len() >= 2, "a generated name has at least two characters");
    let mut masked: String = chars[0].to_string();
    if chars.len() == 2 {
        masked.push('*');
    } else {
        masked.push_str(&"*".repeat(chars.len() - 2));
        masked.push(chars[chars.len() - 1]);
    }
    masked
}

/// SPEC §9 card mask: first 4 and last 4 digits, 8 stars between.
pub fn mask_card(number: &str) -> String {
    assert!(number.len() >= 8 && number.is_ascii());
    format!("{}********{}", &number[..4], &number[number.len() - 4..])
}

/// Luhn check digit (ISO/IEC 7812) for a card number body.
fn luhn_digit(body: &str) -> char {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let digit = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = digit * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                digit
            }
        })
        .sum();
    char::from(b'0' + ((10 - sum % 10) % 10) as u8)
}

/// A 19-digit bank card number of one of [`BANKS`] and the bank's name.
pub fn card_number(rng: &mut Rng) -> (String, &'static str) {
    let (bank, bin) = *rng.pick(&BANKS);
    let body = format!("{bin}{}", rng.digits(12));
    let number = format!("{body}{}", luhn_digit(&body));
    (number, bank)
}

/// An 18-character resident ID number (GB 11643) of someone born in `region`.
pub fn id_number(rng: &mut Rng, region6: &str, birth_year: i32) -> String {
    assert_eq!(region6.len(), 6);
    let month = rng.between(1, 12);
    let day = rng.between(1, 28);
    let body = format!("{region6}{birth_year:04}{month:02}{day:02}{}", rng.digits(3));
    let sum: u32 = body.bytes().zip(ID_WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
    let check = ID_CHECK_CHARACTERS[(sum % 11) as usize];
    format!("{body}{}", char::from(check))
}

/// An 18-character unified social credit code (统一社会信用代码) of an
/// enterprise (`91`) or a farmers' cooperative (`93`) registered in `region`.
pub fn credit_code(rng: &mut Rng, cooperative: bool, region6: &str) -> String {
    let prefix = if cooperative { "93" } else { "91" };
    let middle: String = (0..9).map(|_| char::from(CREDIT_CODE_CHARACTERS[rng.below(31) as usize])).collect::<String>();
    let body = format!("{prefix}{region6}{middle}");
    let value =
        |c: u8| CREDIT_CODE_CHARACTERS.iter().position(|x| *x == c).expect("body uses the code alphabet") as u32;
    let sum: u32 = body.bytes().zip(CREDIT_CODE_WEIGHTS).map(|(c, w)| value(c) * w).sum();
    let check = (31 - sum % 31) % 31;
    format!("{body}{}", char::from(CREDIT_CODE_CHARACTERS[check as usize]))
}

/// A two-character place name plus a suffix (`镇`, `乡`, `村`, `县`).
pub fn place_name(rng: &mut Rng, suffix: &str) -> String {
    let first = *rng.pick(&PLACE_CHARACTERS);
    let mut second = *rng.pick(&PLACE_CHARACTERS);
    if second == first {
        second = PLACE_CHARACTERS[(PLACE_CHARACTERS.iter().position(|c| *c == first).unwrap_or(0) + 1) % 48];
    }
    format!("{first}{second}{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_follow_spec_section_9() {
        // Goal: names keep the first and (for ≥ 3 characters) last character;
        // cards keep 4 + 4 digits with 8 stars.
        assert_eq!(mask_name("张三"), "张*");
        assert_eq!(mask_name("张三丰"), "张*丰");
        assert_eq!(mask_name("欧阳小明"), "欧**明");
        assert_eq!(mask_card("6228480012345671234"), "6228********1234");
    }

    #[test]
    fn check_characters_are_right() {
        // Goal: synthetic ID numbers, card numbers and credit codes carry valid
        // check characters, as real registers would.
        assert_eq!(luhn_digit("7992739871"), '3');
        let mut rng = Rng::new(5, &[]);
        let id = id_number(&mut rng, "422822", 1960);
        assert_eq!(id.len(), 18);
        assert!(id.starts_with("4228221960"));
        // GB 11643 example: 11010519491231002X.
        let sum: u32 = b"11010519491231002".iter().zip(ID_WEIGHTS).map(|(b, w)| u32::from(b - b'0') * w).sum();
        assert_eq!(ID_CHECK_CHARACTERS[(sum % 11) as usize], b'X');
        let code = credit_code(&mut rng, true, "422822");
        assert_eq!(code.len(), 18);
        assert!(code.starts_with("93422822"));
        let (card, _) = card_number(&mut rng);
        assert_eq!(card.len(), 19);
        assert_eq!(luhn_digit(&card[..18]), card.chars().last().unwrap());
    }
}
