//! The roster of a notice page as CSV (UTF-8 with a BOM, so spreadsheet
//! programs read the Chinese text; one header row, one row per payout, no
//! totals row, so every line parses the same way).
//!
//! Invariant: no cell starts with a character a spreadsheet would take for a
//! formula (`=`, `+`, `-`, `@`, tab, carriage return): such text is prefixed
//! with `'`.

use crate::notice::OfficeNotice;
use crate::projection::yuan;

/// The UTF-8 byte order mark.
pub const BOM: &str = "\u{feff}";

/// Columns: the SPEC §9 roster columns, then what ties a row to the ledger.
pub const CSV_COLUMNS: [&str; 13] = [
    "序号",
    "户主",
    "组/村",
    "家庭人口",
    "项目",
    "标准（元）",
    "金额（元）",
    "期间",
    "发放日期",
    "银行卡",
    "退回（元）",
    "公示",
    "记录序号",
];

fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_string()
    }
}

/// The CSV text of every roster row of a notice, numbered 1.. across rosters.
pub fn roster_csv(notice: &OfficeNotice) -> Result<String, String> {
    let mut writer = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    writer.write_record(CSV_COLUMNS).map_err(|e| e.to_string())?;
    let rows = notice.rosters.iter().flat_map(|roster| roster.rows.iter());
    for (number, row) in rows.enumerate() {
        let standard = row.standard_fen.map(yuan).unwrap_or_default();
        let listed = if row.unlisted { "未列入" } else { "已公示" };
        writer
            .write_record([
                (number + 1).to_string(),
                cell(&row.head_name_masked),
                cell(&row.village_name),
                row.members.to_string(),
                cell(&row.program_name),
                standard,
                yuan(row.amount_fen),
                row.period.to_string(),
                row.paid_on.to_string(),
                cell(&row.card_masked),
                yuan(row.refunded_fen),
                listed.to_string(),
                row.seq.to_string(),
            ])
            .map_err(|e| e.to_string())?;
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    let text = String::from_utf8(bytes).map_err(|e| e.to_string())?;
    Ok(format!("{BOM}{text}"))
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn formula_like_cells_are_defused() {
        assert_eq!(cell("=1+1"), "'=1+1");
        assert_eq!(cell("-3"), "'-3");
        assert_eq!(cell("@SUM"), "'@SUM");
        assert_eq!(cell("张*丰"), "张*丰");
    }
}
