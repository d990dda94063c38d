//! Rosters as clerks have them: CSV (UTF-8, GBK/GB18030 or UTF-16, comma or
//! tab separated, detected) or .xlsx (first worksheet), a header row that may
//! sit under title rows, and a 合计 (total) row that may close the table.
//!
//! Owns: finding the header, mapping Chinese and English headers to fields,
//! and locating every cell as "row N, column 身份证号 (C)" — the row number
//! the clerk sees in Excel or WPS. Never: interprets cell values (that is
//! `households` and `payouts`), or puts a cell's content in an error.

use super::xlsx::{self, XlsxCell};
use std::collections::BTreeMap;
use std::path::Path;

/// A roster larger than this is not one county's month (≈ 1,000,000 rows).
pub const ROSTER_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Data rows per roster: one county's households with room to spare.
pub const ROSTER_ROWS_MAX: usize = 200_000;
/// The header is looked for in this many first rows (bank exports put a
/// title and a date above it).
pub const HEADER_SEARCH_ROWS: usize = 10;

/// What a column holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Field {
    Household,
    Name,
    IdNumber,
    Relation,
    Card,
    Bank,
    Village,
    Amount,
}

/// Accepted headers per field, compared after normalisation (whitespace and
/// `*` removed, ASCII lower-cased, anything from the first bracket on
/// dropped: `金额（元）` is `金额`, `Card No.` is `cardno.`).
pub const HEADERS: &[(Field, &[&str])] = &[
    (Field::Household, &["户编号", "户号", "家庭编号", "农户编号", "household", "household_id", "householdid"]),
    (Field::Name, &["姓名", "户主姓名", "成员姓名", "收款人", "收款人姓名", "户名", "账户名称", "name"]),
    (
        Field::IdNumber,
        &[
            "身份证号",
            "身份证号码",
            "公民身份号码",
            "证件号码",
            "身份证",
            "户主身份证号",
            "id",
            "id_number",
            "idnumber",
        ],
    ),
    (Field::Relation, &["与户主关系", "关系", "relation", "relationship"]),
    (
        Field::Card,
        &[
            "银行卡号",
            "卡号",
            "一卡通账号",
            "一卡通卡号",
            "账号",
            "银行账号",
            "收款账号",
            "card",
            "card_number",
            "cardnumber",
        ],
    ),
    (Field::Bank, &["开户行", "开户银行", "银行", "开户机构", "bank"]),
    (Field::Village, &["村", "行政村", "所在村", "村编号", "village"]),
    (Field::Amount, &["金额", "发放金额", "实发金额", "补助金额", "amount", "amount_yuan"]),
];

/// First cells that mark a total row, not a person.
const TOTAL_MARKERS: &[&str] = &["合计", "总计", "小计", "total"];

impl Field {
    pub fn name(self) -> &'static str {
        HEADERS.iter().find(|(f, _)| *f == self).map(|(_, names)| names[0]).expect("every field has headers")
    }
}

/// One cell's content as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Text(String),
    /// An .xlsx numeric cell, as the decimal text stored in the file.
    Number(String),
}

#[derive(Clone, Debug)]
pub struct Row {
    /// 1-based, as the spreadsheet program numbers it.
    pub number: usize,
    cells: Vec<Cell>,
}

/// A located problem with one cell (or one row, when `column` is empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    pub row: usize,
    pub column: String,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.column.is_empty() {
            write!(f, "row {}: {}", self.row, self.message)
        } else {
            write!(f, "row {}, column {}: {}", self.row, self.column, self.message)
        }
    }
}

pub struct Roster {
    /// Field → (0-based column, header as written).
    columns: BTreeMap<Field, (usize, String)>,
    pub rows: Vec<Row>,
    /// Rows whose first cell says 合计/总计: (row, the row).
    pub total_rows: Vec<Row>,
    /// How the file was read: "UTF-8 CSV", "GBK CSV", "UTF-16 CSV", "xlsx".
    pub format: &'static str,
}

/// Spreadsheet column letters of a 0-based index (A, B, …, Z, AA, …).
pub fn column_letters(mut index: usize) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).expect("ASCII letters")
}

fn normalise_header(header: &str) -> String {
    let half = super::identity::to_half_width(header);
    let cut = half.find(['(', '[']).map_or(half.as_str(), |i| &half[..i]);
    cut.chars().filter(|c| !c.is_whitespace() && *c != '*').flat_map(char::to_lowercase).collect()
}

fn field_of(header: &str) -> Option<Field> {
    let normal = normalise_header(header);
    HEADERS.iter().find(|(_, names)| names.contains(&normal.as_str())).map(|(field, _)| *field)
}

impl Cell {
    fn text(&self) -> &str {
        match self {
            Cell::Text(t) | Cell::Number(t) => t,
        }
    }
}

impl Roster {
    pub fn has(&self, field: Field) -> bool {
        self.columns.contains_key(&field)
    }

    /// "身份证号 (C)": the header as written and its column letters.
    pub fn column_label(&self, field: Field) -> String {
        match self.columns.get(&field) {
            Some((index, header)) => format!("{} ({})", header.trim(), column_letters(*index)),
            None => field.name().to_string(),
        }
    }

    /// The cell of a field in a row; None when the column is absent or the cell is blank.
    pub fn cell<'a>(&self, row: &'a Row, field: Field) -> Option<&'a Cell> {
        let (index, _) = self.columns.get(&field)?;
        row.cells.get(*index).filter(|c| !c.text().trim().is_empty())
    }

    /// A problem located at a field's cell in a row.
    pub fn error(&self, row: &Row, field: Field, message: impl std::fmt::Display) -> RowError {
        RowError { row: row.number, column: self.column_label(field), message: message.to_string() }
    }

    /// A problem with a whole row.
    pub fn row_error(&self, row: &Row, message: impl std::fmt::Display) -> RowError {
        RowError { row: row.number, column: String::new(), message: message.to_string() }
    }

    /// Plain text of a field: numbers from .xlsx must be integers of at most
    /// 15 digits (Excel keeps 15 significant digits; beyond, digits are lost).
    pub fn text(&self, row: &Row, field: Field) -> Result<Option<String>, RowError> {
        match self.cell(row, field) {
            None => Ok(None),
            Some(Cell::Text(text)) => Ok(Some(text.trim().to_string())),
            Some(Cell::Number(number)) => {
                if number.len() <= 15 && number.bytes().all(|b| b.is_ascii_digit()) {
                    Ok(Some(number.clone()))
                } else {
                    Err(self.error(row, field, "stored as a number in Excel, so digits may be lost: format the column as text and enter it again"))
                }
            }
        }
    }

    /// Text of an identifier column (ID or card): numeric cells are refused,
    /// since Excel keeps only 15 significant digits of a number.
    pub fn identifier(&self, row: &Row, field: Field) -> Result<Option<String>, RowError> {
        match self.cell(row, field) {
            None => Ok(None),
            Some(Cell::Text(text)) => Ok(Some(text.clone())),
            Some(Cell::Number(_)) => Err(self.error(
                row,
                field,
                "stored as a number in Excel, which keeps only 15 digits: format the column as text and enter it again",
            )),
        }
    }

    /// The amount text of a row: numbers from .xlsx as their decimal text.
    pub fn amount_text<'a>(&self, row: &'a Row) -> Option<&'a str> {
        self.cell(row, Field::Amount).map(Cell::text)
    }

    /// Checks the headers: required fields present, no field twice.
    fn check_columns(&self, required: &[Field]) -> Result<(), String> {
        let missing: Vec<&str> = required.iter().filter(|f| !self.has(**f)).map(|f| f.name()).collect();
        if !missing.is_empty() {
            return Err(format!("the roster has no column {} (see `--help` for accepted headers)", missing.join(", ")));
        }
        Ok(())
    }
}

fn decode(bytes: &[u8]) -> Result<(String, &'static str), String> {
    if let Some((encoding, bom_length)) = encoding_rs::Encoding::for_bom(bytes) {
        let name = if encoding == encoding_rs::UTF_8 { "UTF-8 CSV" } else { "UTF-16 CSV" };
        return encoding
            .decode_without_bom_handling_and_without_replacement(&bytes[bom_length..])
            .map(|text| (text.into_owned(), name))
            .ok_or_else(|| format!("the file starts as {name} but is not valid {}", encoding.name()));
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        return Ok((text.to_string(), "UTF-8 CSV"));
    }
    // GB18030 is a superset of GBK (and GB2312): every GBK file decodes the same.
    encoding_rs::GB18030
        .decode_without_bom_handling_and_without_replacement(bytes)
        .map(|text| (text.into_owned(), "GBK CSV"))
        .ok_or_else(|| "the file is neither UTF-8 nor GBK text: save it as CSV (UTF-8 or GBK) or .xlsx".to_string())
}

/// Rows of CSV text, numbered by the line each starts on (the row number a
/// spreadsheet shows, unless a cell spans lines).
fn csv_rows(text: &str) -> Result<Vec<(usize, Vec<Cell>)>, String> {
    // csv counts lines by LF; Windows and old Mac line ends are made LF first.
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let text = text.as_str();
    let first_line = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = if first_line.matches('\t').count() > first_line.matches(',').count() { b'\t' } else { b',' };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| format!("the CSV is malformed near line {}", e.position().map_or(0, |p| p.line())))?;
        let number = record.position().map_or(rows.len() + 1, |p| p.line() as usize);
        rows.push((number, record.iter().map(|c| Cell::Text(c.to_string())).collect()));
        if rows.len() > ROSTER_ROWS_MAX + HEADER_SEARCH_ROWS {
            return Err(format!("the roster has more than {ROSTER_ROWS_MAX} rows: split it"));
        }
    }
    Ok(rows)
}

fn xlsx_rows(path: &Path) -> Result<Vec<(usize, Vec<Cell>)>, String> {
    let sheet = xlsx::read_first_sheet(path)?;
    if sheet.len() > ROSTER_ROWS_MAX + HEADER_SEARCH_ROWS {
        return Err(format!("the roster has more than {ROSTER_ROWS_MAX} rows: split it"));
    }
    Ok(sheet
        .into_iter()
        .map(|(number, cells)| {
            let cells = cells
                .into_iter()
                .map(|c| match c {
                    XlsxCell::Empty => Cell::Text(String::new()),
                    XlsxCell::Text(t) => Cell::Text(t),
                    XlsxCell::Number(n) => Cell::Number(n),
                })
                .collect();
            (number, cells)
        })
        .collect())
}

/// Reads a roster and maps its columns; `required` fields must have a column.
pub fn read(path: &Path, required: &[Field]) -> Result<Roster, String> {
    let size = std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?.len();
    if size > ROSTER_BYTES_MAX {
        return Err(format!("{} is {size} bytes, at most {ROSTER_BYTES_MAX}: split it", path.display()));
    }
    let mut head = [0u8; 4];
    let head_length = {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        file.read(&mut head).map_err(|e| format!("cannot read {}: {e}", path.display()))?
    };
    let (rows, format) = if head[..head_length].starts_with(b"PK\x03\x04") {
        (xlsx_rows(path)?, "xlsx")
    } else if head[..head_length] == [0xD0, 0xCF, 0x11, 0xE0] {
        return Err("this is an old Excel .xls file: open it in Excel or WPS and save it as .xlsx or CSV".into());
    } else {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let (text, format) = decode(&bytes)?;
        (csv_rows(&text)?, format)
    };
    let roster = build(rows, format)?;
    roster.check_columns(required)?;
    Ok(roster)
}

fn build(rows: Vec<(usize, Vec<Cell>)>, format: &'static str) -> Result<Roster, String> {
    let header_at = rows
        .iter()
        .take(HEADER_SEARCH_ROWS)
        .position(|(_, cells)| cells.iter().filter(|c| field_of(c.text()).is_some()).count() >= 2)
        .ok_or_else(|| {
            format!(
                "no header row in the first {HEADER_SEARCH_ROWS} rows: expected headers like 户编号, 姓名, 身份证号, 银行卡号, 金额"
            )
        })?;
    let mut columns: BTreeMap<Field, (usize, String)> = BTreeMap::new();
    for (index, cell) in rows[header_at].1.iter().enumerate() {
        let Some(field) = field_of(cell.text()) else { continue };
        if let Some((other, header)) = columns.get(&field) {
            return Err(format!(
                "columns {} ({}) and {} ({}) both look like {}: rename or delete one",
                header.trim(),
                column_letters(*other),
                cell.text().trim(),
                column_letters(index),
                field.name()
            ));
        }
        columns.insert(field, (index, cell.text().to_string()));
    }
    let mut data = Vec::new();
    let mut total_rows = Vec::new();
    for (number, cells) in rows.into_iter().skip(header_at + 1) {
        if cells.iter().all(|c| c.text().trim().is_empty()) {
            continue;
        }
        let first = cells.iter().map(|c| normalise_header(c.text())).find(|t| !t.is_empty()).unwrap_or_default();
        let row = Row { number, cells };
        if TOTAL_MARKERS.contains(&first.as_str()) {
            total_rows.push(row);
        } else {
            data.push(row);
        }
    }
    Ok(Roster { columns, rows: data, total_rows, format })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_found_under_titles_and_totals_are_set_apart() {
        // Goal: a bank export with a title row, bracketed headers and a 合计 row maps cleanly.
        let text = "建始县2019年1月发放清册,,\r\n户编号, 姓名 ,金额（元）\r\nh1,张三,300\r\n,,\r\n合计,,300\r\n";
        let roster = build(csv_rows(text).unwrap(), "UTF-8 CSV").unwrap();
        assert_eq!(roster.rows.len(), 1);
        assert_eq!(roster.rows[0].number, 3);
        assert_eq!(roster.total_rows.len(), 1);
        assert_eq!(roster.column_label(Field::Amount), "金额（元） (C)");
        assert_eq!(roster.amount_text(&roster.rows[0]), Some("300"));
        assert!(!roster.has(Field::IdNumber));
    }

    #[test]
    fn encodings_are_detected() {
        // Goal: UTF-8 (with or without BOM), GBK and UTF-16 decode to the same text; garbage is refused.
        let (gbk, _, _) = encoding_rs::GBK.encode("户编号,姓名");
        assert_eq!(decode(&gbk).unwrap(), ("户编号,姓名".to_string(), "GBK CSV"));
        assert_eq!(decode("\u{FEFF}户编号".as_bytes()).unwrap(), ("户编号".to_string(), "UTF-8 CSV"));
        let utf16: Vec<u8> =
            [0xFF, 0xFE].into_iter().chain("户\t名".encode_utf16().flat_map(u16::to_le_bytes)).collect();
        assert_eq!(decode(&utf16).unwrap(), ("户\t名".to_string(), "UTF-16 CSV"));
        assert!(decode(&[0x81, 0x20, 0xFF]).is_err());
        assert_eq!(column_letters(0), "A");
        assert_eq!(column_letters(27), "AB");
    }

    #[test]
    fn one_field_twice_is_refused() {
        // Goal: two columns that both look like the amount stop the import rather than guessing.
        let rows = csv_rows("户编号,金额,实发金额\nh1,1,1\n").unwrap();
        assert!(build(rows, "UTF-8 CSV").err().unwrap().contains("both look like"));
    }
}
