//! HTML for people: escaping, the page shell with its inline stylesheet
//! (phone, desktop and A4 print; no external assets, no JavaScript) and the
//! zh-CN notice page (公告公示, SPEC §9).
//!
//! Invariant: every piece of ledger text goes through [`Escaped`] (element
//! content and attribute values alike); only this module's literals are raw.

use crate::date::Period;
use crate::notice::{NoticeSpan, OfficeNotice, ProjectNotice, Roster};
use crate::payload::Level;
use crate::projection::yuan;
use std::fmt::{self, Write};

/// Text made safe for HTML element content and quoted attribute values.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(position) = rest.find(['&', '<', '>', '"', '\'']) {
            f.write_str(&rest[..position])?;
            f.write_str(match rest.as_bytes()[position] {
                b'&' => "&amp;",
                b'<' => "&lt;",
                b'>' => "&gt;",
                b'"' => "&quot;",
                _ => "&#39;",
            })?;
            rest = &rest[position + 1..];
        }
        f.write_str(rest)
    }
}

/// `text` escaped for HTML.
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

/// The stylesheet of every page: readable on a phone (tables turn into
/// cards on screens below 720px — not in print, where A4 is about that
/// wide), printable on A4 (each roster starts a page, table
/// heads repeat), CJK fonts named first.
pub const STYLE: &str = r#"
:root{--ink:#1b1b1b;--muted:#5b5b5b;--line:#cfc8bb;--accent:#a31515;--head:#f4efe4;--soft:#faf8f3}
*{box-sizing:border-box}
body{margin:0;color:var(--ink);background:#fff;line-height:1.6;font-size:15px;
 font-family:"Noto Sans CJK SC","Source Han Sans SC","PingFang SC","Microsoft YaHei","WenQuanYi Micro Hei",sans-serif}
main{max-width:1120px;margin:0 auto;padding:12px 16px 40px}
header.masthead{text-align:center;border-bottom:3px double var(--accent);padding:8px 0 10px;margin-bottom:12px}
header.masthead h1{color:var(--accent);font-size:1.7em;margin:.2em 0;letter-spacing:.08em}
.meta{color:var(--muted);font-size:.92em;margin:.2em 0}
nav.toc{background:var(--soft);border:1px solid var(--line);padding:8px 12px;margin:10px 0;font-size:.95em}
nav.toc a{margin-right:1em;white-space:nowrap}
h2{font-size:1.3em;border-left:6px solid var(--accent);padding-left:8px;margin:1.6em 0 .6em}
h3{font-size:1.12em;margin:1.2em 0 .3em;text-align:center}
a{color:#0b4f8a}
.wrap{overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.4em 0 .8em;font-size:.93em}
th,td{border:1px solid var(--line);padding:4px 6px;vertical-align:top}
th{background:var(--head);font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono{font-family:"DejaVu Sans Mono",monospace;white-space:nowrap}
tfoot td{font-weight:700;background:var(--soft)}
tr.flagged td{background:#fff3f0}
tr.group th{text-align:left;background:#ece4d3;font-size:1.05em}
table.roster-table td{white-space:nowrap}
table.roster-table td.text{white-space:normal;min-width:7em}
.note{color:var(--muted);font-size:.9em}
.warn{color:var(--accent);font-weight:600}
.badge{display:inline-block;padding:0 .5em;border-radius:3px;font-size:.85em;color:#fff;background:#777}
.badge.high{background:#b3261e}.badge.medium{background:#c77700}.badge.low{background:#5d7a8c}
code{word-break:break-all}
pre.checkpoint{white-space:pre-wrap;word-break:break-all;background:var(--soft);border:1px solid var(--line);padding:10px;font-size:.9em}
ol.steps li{margin:.3em 0}
footer.issuer{margin-top:2em;border-top:1px solid var(--line);padding-top:.8em;text-align:right}
.charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(330px,1fr));gap:14px}
figure.chart{margin:0;border:1px solid var(--line);padding:6px 8px;background:#fff}
figure.chart figcaption{font-weight:600;font-size:.95em}
figure.chart svg{width:100%;height:auto;display:block}
form.filters{display:flex;flex-wrap:wrap;gap:8px 16px;align-items:end;background:var(--soft);border:1px solid var(--line);padding:8px 12px}
form.filters label{display:flex;flex-direction:column;font-size:.9em}
@media screen and (max-width:720px){
 body{font-size:16px} main{padding:8px}
 table.cards thead{display:none}
 table.cards,table.cards tbody,table.cards tfoot,table.cards tr,table.cards td{display:block;width:100%}
 table.cards tr{border:1px solid var(--line);margin:0 0 10px;background:#fff}
 table.cards td,table.roster-table td.text{border:none;border-bottom:1px dotted var(--line);display:flex;justify-content:space-between;gap:1em;text-align:right;white-space:normal}
 table.cards td::before{content:attr(data-label);font-weight:600;color:var(--muted);text-align:left}
 table.cards td:empty{display:none}
}
@page{size:A4;margin:12mm 10mm}
@media print{
 body{font-size:10pt} main{max-width:none;padding:0}
 nav.toc,form.filters,.screen-only{display:none}
 a{color:inherit;text-decoration:none}
 table{font-size:8.5pt} th,td{padding:2px 3px}
 table.roster-table td{white-space:normal} table.roster-table td.keep,table.roster-table td.num{white-space:nowrap}
 table.roster-table td.mono{white-space:nowrap;font-size:8pt}
 a.proof,.link-separator{display:none}
 thead{display:table-header-group} tfoot{display:table-row-group} tr{break-inside:avoid}
 section.roster{break-before:page} section.roster.first{break-before:auto}
 .charts{display:block} figure.chart{break-inside:avoid;margin-bottom:8px}
}
"#;

/// The page shell: `<!doctype html>` to the start of `<main>`.
pub fn open_page(out: &mut String, title: &str) {
    let _ = writeln!(
        out,
        "<!doctype html>\n<html lang=\"zh-CN\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>",
        Escaped(title)
    );
}

pub fn close_page(out: &mut String) {
    out.push_str("</main>\n</body>\n</html>\n");
}

/// `2019年1月`, `2019年第3季度`, `2019年度`.
pub fn period_label(period: Period) -> String {
    match period {
        Period::Month(year, month) => format!("{year}年{month}月"),
        Period::Quarter(year, quarter) => format!("{year}年第{quarter}季度"),
        Period::Year(year) => format!("{year}年度"),
    }
}

pub fn level_label(level: Level) -> &'static str {
    match level {
        Level::Central => "中央",
        Level::Province => "省级",
        Level::Prefecture => "市州级",
        Level::County => "县级",
        Level::Township => "乡镇级",
        Level::Village => "村级",
    }
}

fn anchor(roster: &Roster) -> String {
    format!("r-{}-{}", roster.program, roster.period)
}

fn span_text(notice: &NoticeSpan, office_name: &str) -> String {
    format!("{} 至 {}（共{}天，{}发布）", notice.from, notice.to, notice.days(), office_name)
}

/// The notice page of an office.
pub fn notice_page(notice: &OfficeNotice, names: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(64 * 1024 + notice.rosters.iter().map(|r| r.rows.len() * 700).sum::<usize>());
    let title = format!("{}资金公告公示", notice.office_name);
    open_page(&mut out, &title);
    let as_of = notice.as_of.map_or_else(|| "—".to_string(), |d| d.to_string());
    let _ = writeln!(
        out,
        "<header class=\"masthead\">\n<h1>{}</h1>\n<p class=\"meta\">{} · 公示单位：{} · 数据截至 {}（账本业务日期）</p>\n\
         <p class=\"meta\">资金在阳光下运行 — 本页由账本自动生成，每一行都可对照已签名的检查点核验。</p>\n</header>",
        Escaped(&title),
        Escaped(&notice.ledger_name),
        Escaped(&notice.office_name),
        as_of
    );
    write_toc(&mut out, notice);
    write_rosters(&mut out, notice, names);
    write_projects(&mut out, &notice.projects, names);
    write_flows(&mut out, notice);
    write_verification(&mut out, notice);
    write_contact(&mut out, notice, &as_of);
    close_page(&mut out);
    out
}

fn write_toc(out: &mut String, notice: &OfficeNotice) {
    out.push_str("<nav class=\"toc\"><strong>目录：</strong>");
    for roster in &notice.rosters {
        let _ = write!(
            out,
            "<a href=\"#{}\">{}{}</a>",
            Escaped(&anchor(roster)),
            period_label(roster.period),
            Escaped(&roster.program_name)
        );
    }
    let _ = writeln!(
        out,
        "<a href=\"#projects\">项目公示</a><a href=\"#flows\">资金流向</a><a href=\"#verify\">如何核验</a>\
         <a href=\"#contact\">监督举报</a><a href=\"/notice/{}.csv\">下载发放名单（CSV）</a></nav>",
        Escaped(&notice.office_id)
    );
}

const ROSTER_COLUMNS: [&str; 12] = [
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
    "备注",
    "核验",
];

fn write_rosters(out: &mut String, notice: &OfficeNotice, names: &dyn Fn(&str) -> String) {
    let _ = writeln!(out, "<h2 id=\"rosters\">一、惠民惠农资金发放名单</h2>");
    if notice.rosters.is_empty() {
        out.push_str("<p>本单位辖区内暂无发放记录。</p>\n");
    }
    for (position, roster) in notice.rosters.iter().enumerate() {
        let first = if position == 0 { " first" } else { "" };
        let _ = writeln!(
            out,
            "<section class=\"roster{first}\" id=\"{}\">\n<h3>{}{}{}发放公示</h3>",
            Escaped(&anchor(roster)),
            Escaped(&notice.office_name),
            period_label(roster.period),
            Escaped(&roster.program_name)
        );
        write_roster_notices(out, roster, names);
        write_roster_table(out, roster, &notice.checkpoint);
        out.push_str("</section>\n");
    }
    if notice.rosters_left_off > 0 {
        let _ = writeln!(
            out,
            "<p class=\"warn\">另有 {} 份较早的名单未在本页列出（每页至多 {} 行），请按项目和期间查询，\
             例如 <code>?program=dibao&amp;period=2019-01</code>。</p>",
            notice.rosters_left_off,
            crate::notice::NOTICE_ROWS_MAX
        );
    }
}

fn write_roster_notices(out: &mut String, roster: &Roster, names: &dyn Fn(&str) -> String) {
    if roster.notices.is_empty() {
        out.push_str("<p class=\"warn\">公示期：账本中没有列出这些农户的本期公示记录。</p>\n");
        return;
    }
    out.push_str("<p class=\"note\">公示期：");
    let spans: Vec<String> = roster.notices.iter().map(|n| span_text(n, &names(&n.office))).collect();
    let _ = writeln!(out, "{}</p>", Escaped(&spans.join("；")));
}

fn write_roster_table(out: &mut String, roster: &Roster, checkpoint: &crate::notice::CheckpointView) {
    out.push_str("<div class=\"wrap\"><table class=\"cards roster-table\">\n<thead><tr>");
    for column in ROSTER_COLUMNS {
        let class = if matches!(column, "家庭人口" | "标准（元）" | "金额（元）") {
            " class=\"num\""
        } else {
            ""
        };
        let _ = write!(out, "<th{class}>{column}</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for (number, row) in roster.rows.iter().enumerate() {
        let standard = row.standard_fen.map_or_else(|| "—".to_string(), yuan);
        let mut remarks = Vec::new();
        if row.refunded_fen > 0 {
            remarks.push(format!("已退回{}元", yuan(row.refunded_fen)));
        }
        if row.unlisted {
            remarks.push("未列入本期公示名单".to_string());
        }
        let check = if checkpoint.covers(row.seq) {
            format!(
                "<span><a class=\"proof\" href=\"/v1/proofs/inclusion?seq={0}&amp;size={1}\">证明</a>\
                 <span class=\"link-separator\"> · </span><a class=\"record\" href=\"/v1/records/{0}\">记录{0}</a></span>",
                row.seq,
                checkpoint.size.unwrap_or_default()
            )
        } else {
            format!("<span><a class=\"record\" href=\"/v1/records/{0}\">记录{0}</a>（待下一检查点）</span>", row.seq)
        };
        let class = if row.unlisted { " class=\"flagged\"" } else { "" };
        let _ = writeln!(
            out,
            "<tr{class}><td data-label=\"序号\">{}</td><td data-label=\"户主\" class=\"keep\">{}</td><td data-label=\"组/村\">{}</td>\
             <td data-label=\"家庭人口\" class=\"num\">{}</td><td data-label=\"项目\" class=\"text\">{}</td>\
             <td data-label=\"标准（元）\" class=\"num\">{}</td><td data-label=\"金额（元）\" class=\"num\">{}</td>\
             <td data-label=\"期间\" class=\"keep\">{}</td><td data-label=\"发放日期\" class=\"keep\">{}</td>\
             <td data-label=\"银行卡\" class=\"mono\">{}</td><td data-label=\"备注\" class=\"text\">{}</td><td data-label=\"核验\">{}</td></tr>",
            number + 1,
            Escaped(&row.head_name_masked),
            Escaped(&row.village_name),
            row.members,
            Escaped(&row.program_name),
            standard,
            yuan(row.amount_fen),
            row.period,
            row.paid_on,
            Escaped(&row.card_masked),
            Escaped(&remarks.join("；")),
            check
        );
    }
    let refunded = roster.refunded_fen();
    let net = if refunded > 0 {
        format!("其中退回 {} 元，实发 {} 元", yuan(refunded), yuan(roster.total_fen() - refunded))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "</tbody>\n<tfoot><tr><td colspan=\"6\" data-label=\"合计\">合计：{} 户 {} 笔</td>\
         <td class=\"num\" data-label=\"合计金额（元）\">{}</td><td colspan=\"5\" data-label=\"\">{}</td></tr></tfoot>\n\
         </table></div>",
        roster.households(),
        roster.rows.len(),
        yuan(roster.total_fen()),
        net
    );
}

fn write_projects(out: &mut String, projects: &[ProjectNotice], names: &dyn Fn(&str) -> String) {
    out.push_str("<h2 id=\"projects\">二、项目公示</h2>\n");
    if projects.is_empty() {
        out.push_str("<p>本单位辖区内暂无项目库项目。</p>\n");
        return;
    }
    out.push_str(
        "<div class=\"wrap\"><table class=\"cards\">\n<thead><tr><th>项目名称（建设内容）</th><th>地点</th><th>资金来源</th>\
         <th>实施单位</th><th class=\"num\">预算（元）</th><th>收款单位</th><th class=\"num\">已支付（元）</th>\
         <th>公示期</th></tr></thead>\n<tbody>\n",
    );
    for project in projects {
        let spans: Vec<String> = project.notices.iter().map(|n| span_text(n, &names(&n.office))).collect();
        let spans = if spans.is_empty() { "账本中没有项目公示记录".to_string() } else { spans.join("；") };
        let payees = if project.payees.is_empty() { "—".to_string() } else { project.payees.join("、") };
        let _ = writeln!(
            out,
            "<tr><td data-label=\"项目名称\">{} <span class=\"note\">{}</span></td><td data-label=\"地点\">{}</td>\
             <td data-label=\"资金来源\">{}</td><td data-label=\"实施单位\">{}</td>\
             <td data-label=\"预算（元）\" class=\"num\">{}</td><td data-label=\"收款单位\">{}</td>\
             <td data-label=\"已支付（元）\" class=\"num\">{}</td><td data-label=\"公示期\">{}</td></tr>",
            Escaped(&project.name),
            Escaped(&project.project_id),
            Escaped(&project.location),
            Escaped(&project.program_name),
            Escaped(&project.office_name),
            yuan(project.budget_fen),
            Escaped(&payees),
            yuan(project.paid_fen),
            Escaped(&spans)
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn write_flows(out: &mut String, notice: &OfficeNotice) {
    out.push_str(
        "<h2 id=\"flows\">三、资金流向（按层级）</h2>\n<p class=\"note\">本单位、其各级上级和所属下级单位的资金账户：\
         收到（下达、拨入、整合调入、退回）、拨付下级、发放到户、项目支出、结存，以及结存资金中最早一笔已滞留的天数。</p>\n",
    );
    if notice.flows.is_empty() {
        out.push_str("<p>暂无资金账户。</p>\n");
        return;
    }
    let mut level = None;
    for flow in &notice.flows {
        let row = &flow.summary;
        if level != Some(row.level) {
            if level.is_some() {
                out.push_str("</tbody></table></div>\n");
            }
            level = Some(row.level);
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<div class=\"wrap\"><table class=\"cards\">\n<thead><tr><th>单位</th><th>资金项目</th>\
                 <th class=\"num\">收到（元）</th><th class=\"num\">拨付下级（元）</th><th class=\"num\">发放（元）</th>\
                 <th class=\"num\">支出（元）</th><th class=\"num\">结存（元）</th><th class=\"num\">最长滞留天数</th>\
                 </tr></thead>\n<tbody>",
                level_label(row.level)
            );
        }
        let oldest = row.oldest_lot_age_days.map_or_else(|| "—".to_string(), |d| d.to_string());
        let _ = writeln!(
            out,
            "<tr><td data-label=\"单位\">{}</td><td data-label=\"资金项目\">{}</td>\
             <td data-label=\"收到（元）\" class=\"num\">{}</td><td data-label=\"拨付下级（元）\" class=\"num\">{}</td>\
             <td data-label=\"发放（元）\" class=\"num\">{}</td><td data-label=\"支出（元）\" class=\"num\">{}</td>\
             <td data-label=\"结存（元）\" class=\"num\">{}</td><td data-label=\"最长滞留天数\" class=\"num\">{}</td></tr>",
            Escaped(&flow.office_name),
            Escaped(&flow.program_name),
            yuan(row.received_fen),
            yuan(row.passed_on_fen),
            yuan(row.paid_out_fen),
            yuan(row.spent_fen),
            yuan(row.held_fen),
            oldest
        );
    }
    out.push_str("</tbody></table></div>\n");
}

fn write_verification(out: &mut String, notice: &OfficeNotice) {
    let checkpoint = &notice.checkpoint;
    out.push_str("<h2 id=\"verify\">四、如何核验本公示</h2>\n");
    match (&checkpoint.note, checkpoint.size) {
        (Some(note), Some(size)) => {
            let _ = writeln!(
                out,
                "<p>账本最新的签名检查点（树大小 {size}，账本现有 {} 条记录）：</p>\n<pre class=\"checkpoint\">{}</pre>",
                checkpoint.tree_size,
                Escaped(note)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "<p class=\"warn\">检查点待签发：账本现有 {} 条记录，尚未签发检查点。签发后，每行的“证明”链接即可使用。</p>",
                checkpoint.tree_size
            );
        }
    }
    let key = match (&checkpoint.log_key_id, &checkpoint.log_public_key_base64) {
        (Some(id), Some(key)) => {
            format!("（日志密钥 <code>{}</code>，公钥 <code>{}</code>）", Escaped(id), Escaped(key))
        }
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "<ol class=\"steps\">\n\
         <li>点击名单中某一行的“记录”链接，得到这笔发放的账本记录；记录里的 <code>hash</code> 就是它在默克尔树中的叶子哈希（叶子哈希 = 记录哈希）。</li>\n\
         <li>点击同一行的“证明”链接，得到这条记录对上面检查点的包含证明（RFC 9162）：<code>index</code>、<code>size</code> 和一串 <code>proof</code> 哈希。</li>\n\
         <li>从叶子哈希出发，按证明逐层计算（SHA-256(0x01 ‖ 左 ‖ 右)），得到的根哈希应当等于检查点第三行的根（Base64 编码）。</li>\n\
         <li>检查点末行是账本日志密钥的签名{key}；用创世事件中登记的公钥验证签名，就能确认根没有被改动。</li>\n\
         <li>可以用 <code>sunledger verify</code> 或独立的 Python 校验程序 <code>tools/verify.py</code> 完成以上计算。</li>\n\
         </ol>\n<p class=\"note\">名单中的姓名和银行卡号已按统一规则脱敏（姓名保留首字，三字及以上保留末字；银行卡保留前四位和后四位），页面不显示身份证号。</p>"
    );
}

fn write_contact(out: &mut String, notice: &OfficeNotice, as_of: &str) {
    out.push_str("<h2 id=\"contact\">五、监督举报</h2>\n");
    match &notice.contact {
        Some((contact, from)) => {
            let _ = writeln!(
                out,
                "<p>对公示内容有异议的，请在公示期内向以下单位反映：<strong>{}</strong>（{}）。</p>",
                Escaped(contact),
                Escaped(from)
            );
        }
        None => out.push_str("<p class=\"warn\">本单位及其上级均未在账本中登记监督举报渠道。</p>\n"),
    }
    let _ = writeln!(
        out,
        "<footer class=\"issuer\"><p>公示单位：{}</p><p>公示日期：{as_of}</p></footer>",
        Escaped(&notice.office_name)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(escape(input), expected);
    }

    #[test]
    fn escaping() {
        check("", "");
        check("张*丰", "张*丰");
        check("<script>alert(\"x\")</script>", "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;");
        check("a&b", "a&amp;b");
        check("it's", "it&#39;s");
        check("&amp;", "&amp;amp;");
        check("村<>", "村&lt;&gt;");
    }

    #[test]
    fn periods() {
        assert_eq!(period_label(Period::Month(2019, 1)), "2019年1月");
        assert_eq!(period_label(Period::Quarter(2019, 3)), "2019年第3季度");
        assert_eq!(period_label(Period::Year(2019)), "2019年度");
    }
}
