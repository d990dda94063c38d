//! A minimal reader of the first worksheet of an Office Open XML workbook
//! (.xlsx, ECMA-376 Part 1 §18): shared strings, inline strings and numbers,
//! with every part's size bounded (a small zip can inflate to gigabytes).
//!
//! Owns: turning an .xlsx into rows of cells. Numbers are kept as the decimal
//! text the file holds (`1200.5`), never converted to floating point.
//! Never: evaluates formulas (a formula cell yields its cached value).

use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::Read;

/// Largest inflated XML part read (a 100,000-row roster sheet is ~30 MiB).
pub const PART_BYTES_MAX: u64 = 128 * 1024 * 1024;
/// Columns per row read; a roster has a dozen.
pub const COLUMNS_MAX: usize = 256;

/// One cell as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum XlsxCell {
    Empty,
    Text(String),
    /// A numeric cell: the decimal text of its value (`300`, `1200.5`, `4.2E+17`).
    Number(String),
}

/// Rows of the first worksheet: (1-based row number, cells by column).
pub type Sheet = Vec<(usize, Vec<XlsxCell>)>;

fn read_part(archive: &mut zip::ZipArchive<std::fs::File>, name: &str) -> Result<Option<String>, String> {
    let file = match archive.by_name(name) {
        Ok(file) => file,
        Err(zip::result::ZipError::FileNotFound) => return Ok(None),
        Err(e) => return Err(format!("cannot read {name} in the workbook: {e}")),
    };
    let mut text = String::new();
    file.take(PART_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {name} in the workbook: {e}"))?;
    if text.len() as u64 > PART_BYTES_MAX {
        return Err(format!("{name} in the workbook is larger than {PART_BYTES_MAX} bytes"));
    }
    Ok(Some(text))
}

fn attribute(element: &BytesStart<'_>, key: &[u8]) -> Option<String> {
    element
        .attributes()
        .flatten()
        .find(|a| a.key.as_ref() == key || a.key.local_name().as_ref() == key)
        .and_then(|a| a.unescape_value().ok().map(|v| v.into_owned()))
}

fn xml_error(part: &str, e: impl std::fmt::Display) -> String {
    format!("the workbook's {part} is not valid XML: {e}")
}

/// The path of the first worksheet, from workbook.xml and its relationships.
fn first_sheet_path(archive: &mut zip::ZipArchive<std::fs::File>) -> Result<String, String> {
    let workbook = read_part(archive, "xl/workbook.xml")?.ok_or("not an .xlsx workbook (no xl/workbook.xml)")?;
    let mut reader = Reader::from_str(&workbook);
    let mut relation = None;
    loop {
        match reader.read_event().map_err(|e| xml_error("workbook.xml", e))? {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"sheet" => {
                relation = attribute(&e, b"r:id").or_else(|| attribute(&e, b"id"));
                break;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let relation = relation.ok_or("the workbook has no worksheet")?;
    let rels = read_part(archive, "xl/_rels/workbook.xml.rels")?.ok_or("the workbook has no relationships part")?;
    let mut reader = Reader::from_str(&rels);
    loop {
        match reader.read_event().map_err(|e| xml_error("workbook.xml.rels", e))? {
            Event::Start(e) | Event::Empty(e)
                if e.local_name().as_ref() == b"Relationship"
                    && attribute(&e, b"Id").as_deref() == Some(relation.as_str()) =>
            {
                let target = attribute(&e, b"Target").ok_or("a relationship without a target")?;
                return Ok(match target.strip_prefix('/') {
                    Some(absolute) => absolute.to_string(),
                    None => format!("xl/{target}"),
                });
            }
            Event::Eof => return Err("the first worksheet is missing from the workbook".into()),
            _ => {}
        }
    }
}

/// The shared strings table: each `<si>`'s text runs joined, phonetic
/// guides (`<rPh>`) left out.
fn shared_strings(archive: &mut zip::ZipArchive<std::fs::File>) -> Result<Vec<String>, String> {
    let Some(xml) = read_part(archive, "xl/sharedStrings.xml")? else { return Ok(Vec::new()) };
    let mut reader = Reader::from_str(&xml);
    let mut strings = Vec::new();
    let (mut current, mut in_text, mut in_phonetic) = (String::new(), false, false);
    loop {
        match reader.read_event().map_err(|e| xml_error("sharedStrings.xml", e))? {
            Event::Start(e) => match e.local_name().as_ref() {
                b"si" => current.clear(),
                b"t" => in_text = true,
                b"rPh" => in_phonetic = true,
                _ => {}
            },
            Event::Empty(e) if e.local_name().as_ref() == b"si" => strings.push(String::new()),
            Event::End(e) => match e.local_name().as_ref() {
                b"si" => strings.push(std::mem::take(&mut current)),
                b"t" => in_text = false,
                b"rPh" => in_phonetic = false,
                _ => {}
            },
            Event::Text(t) if in_text && !in_phonetic => {
                current.push_str(&t.unescape().map_err(|e| xml_error("sharedStrings.xml", e))?)
            }
            Event::CData(t) if in_text && !in_phonetic => current.push_str(&String::from_utf8_lossy(&t)),
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(strings)
}

/// Column index (0-based) from a cell reference like `AB12`.
fn column_of(reference: &str) -> Option<usize> {
    let letters: Vec<u8> = reference.bytes().take_while(u8::is_ascii_uppercase).collect();
    if letters.is_empty() || letters.len() > 3 {
        return None;
    }
    Some(letters.iter().fold(0usize, |n, l| n * 26 + usize::from(l - b'A' + 1)) - 1)
}

/// A cell being read: its column, type attribute and text so far.
struct OpenCell {
    column: usize,
    kind: Option<String>,
    value: String,
}

fn finish_cell(cell: OpenCell, strings: &[String]) -> Result<XlsxCell, String> {
    Ok(match cell.kind.as_deref() {
        Some("s") => {
            let index: usize = cell.value.trim().parse().map_err(|_| "a shared-string cell without an index")?;
            XlsxCell::Text(strings.get(index).cloned().ok_or("a shared-string index beyond the table")?)
        }
        Some("inlineStr") | Some("str") | Some("e") | Some("d") => XlsxCell::Text(cell.value),
        Some("b") => XlsxCell::Text(if cell.value.trim() == "1" { "TRUE".into() } else { "FALSE".into() }),
        _ if cell.value.trim().is_empty() => XlsxCell::Empty,
        _ => XlsxCell::Number(cell.value.trim().to_string()),
    })
}

/// Reads the first worksheet of the workbook at `path`.
pub fn read_first_sheet(path: &std::path::Path) -> Result<Sheet, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let mut archive =
        zip::ZipArchive::new(file).map_err(|e| format!("{} is not an .xlsx workbook: {e}", path.display()))?;
    let sheet_path = first_sheet_path(&mut archive)?;
    let strings = shared_strings(&mut archive)?;
    let xml = read_part(&mut archive, &sheet_path)?.ok_or("the first worksheet is missing from the workbook")?;
    parse_sheet(&xml, &strings)
}

fn parse_sheet(xml: &str, strings: &[String]) -> Result<Sheet, String> {
    let mut reader = Reader::from_str(xml);
    let mut rows: Sheet = Vec::new();
    let mut cells: Vec<XlsxCell> = Vec::new();
    let mut row_number = 0usize;
    let mut cell: Option<OpenCell> = None;
    let mut in_value = false;
    loop {
        match reader.read_event().map_err(|e| xml_error("worksheet", e))? {
            Event::Start(e) if e.local_name().as_ref() == b"row" => {
                row_number = attribute(&e, b"r").and_then(|r| r.parse().ok()).unwrap_or(row_number + 1);
                cells.clear();
            }
            Event::Empty(e) if e.local_name().as_ref() == b"row" => {
                row_number = attribute(&e, b"r").and_then(|r| r.parse().ok()).unwrap_or(row_number + 1);
            }
            Event::End(e) if e.local_name().as_ref() == b"row" => rows.push((row_number, std::mem::take(&mut cells))),
            Event::Start(e) if e.local_name().as_ref() == b"c" => {
                let column = attribute(&e, b"r").and_then(|r| column_of(&r)).unwrap_or(cells.len());
                cell = Some(OpenCell { column, kind: attribute(&e, b"t"), value: String::new() });
            }
            Event::End(e) if e.local_name().as_ref() == b"c" => {
                if let Some(open) = cell.take() {
                    let column = open.column;
                    if column >= COLUMNS_MAX {
                        return Err(format!("row {row_number} has more than {COLUMNS_MAX} columns"));
                    }
                    if cells.len() <= column {
                        cells.resize(column + 1, XlsxCell::Empty);
                    }
                    cells[column] = finish_cell(open, strings)?;
                }
            }
            Event::Start(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_value = true,
            Event::End(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_value = false,
            Event::Text(t) if in_value => {
                if let Some(open) = cell.as_mut() {
                    open.value.push_str(&t.unescape().map_err(|e| xml_error("worksheet", e))?);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sheet_cells_by_type() {
        // Goal: shared, inline and numeric cells land in their columns; numbers stay decimal text.
        let strings = vec!["户编号".to_string(), "金额".to_string()];
        let xml = r#"<worksheet><sheetData>
            <row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c></row>
            <row r="3"><c r="A3" t="inlineStr"><is><t xml:space="preserve"> h1 </t></is></c><c r="C3"><v>1200.5</v></c></row>
        </sheetData></worksheet>"#;
        let rows = parse_sheet(xml, &strings).unwrap();
        assert_eq!(rows[0], (1, vec![XlsxCell::Text("户编号".into()), XlsxCell::Empty, XlsxCell::Text("金额".into())]));
        assert_eq!(
            rows[1],
            (3, vec![XlsxCell::Text(" h1 ".into()), XlsxCell::Empty, XlsxCell::Number("1200.5".into())])
        );
        assert_eq!(column_of("AB12"), Some(27));
    }
}
