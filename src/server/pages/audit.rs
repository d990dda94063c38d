//! The auditor's page (审计疑点看板): flags by rule, severity and office,
//! each with its evidence linked to `/v1/records/{seq}`, and every office's
//! month-end fund balance over the year as a small inline SVG bar chart.
//!
//! Boundary: shows what `rules` raised and `notice::NoticeIndex` folded;
//! judges nothing. Digest subjects (cards, persons) are shortened as in the
//! CLI, so the page holds no full digest.

use super::html::{close_page, level_label, open_page, Escaped};
use crate::ledger::Ledger;
use crate::notice::{office_name, Month, NoticeIndex};
use crate::payload::ReviewStatus;
use crate::projection::{snake_name, yuan};
use crate::report::{flag_offices, shown_subject, EventOffices, FlagFilter, SEVERITIES};
use crate::rules::{Flag, Rule, Severity, SubjectKind};
use crate::state::State;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

/// Flags listed in detail on one page (the counts cover all).
pub const FLAGS_SHOWN_MAX: usize = 2_000;
/// Evidence links shown per flag.
pub const EVIDENCE_LINKS_MAX: usize = 24;
/// Months a chart shows at most (the latest ones): ten years.
pub const CHART_MONTHS_MAX: u32 = 120;
/// Chart geometry (SVG user units).
const CHART_WIDTH: f64 = 360.0;
const CHART_HEIGHT: f64 = 170.0;
const CHART_LEFT: f64 = 52.0;
const CHART_RIGHT: f64 = 8.0;
const CHART_TOP: f64 = 12.0;
const CHART_BOTTOM: f64 = 30.0;
/// Fen in 万元 (ten thousand yuan), the chart's unit.
const FEN_PER_WAN_YUAN: f64 = 1_000_000.0;

fn severity_label(severity: Severity) -> &'static str {
    match severity {
        Severity::High => "高",
        Severity::Medium => "中",
        Severity::Low => "低",
    }
}

fn review_label(review: ReviewStatus) -> &'static str {
    match review {
        ReviewStatus::UnderReview => "核查中",
        ReviewStatus::Confirmed => "已确认",
        ReviewStatus::Dismissed => "已排除",
    }
}

/// The page shown when access is refused.
pub fn refusal_page(reason: &str) -> String {
    let mut out = String::new();
    open_page(&mut out, "审计页面：无权访问");
    let _ = writeln!(
        out,
        "<header class=\"masthead\"><h1>无权访问</h1></header>\n<p>{}</p>\n\
         <p class=\"note\">请在服务器本机打开本页（或通过 SSH 隧道），或使用签名请求访问 <code>GET /v1/flags</code>。</p>",
        Escaped(reason)
    );
    close_page(&mut out);
    out
}

/// The auditor's page over `flags` (already filtered by `filter`); the
/// charts mark `fund_offices` (offices with fund flags, whatever the filter).
pub fn audit_page(
    ledger: &Ledger,
    flags: &[Flag],
    flags_as_of_size: u64,
    filter: &FlagFilter,
    fund_offices: &BTreeSet<String>,
) -> Result<String, String> {
    let state = ledger.state();
    let mut events = EventOffices::new(ledger);
    let mut offices_of_flags = Vec::with_capacity(flags.len());
    for flag in flags {
        let offices: BTreeSet<String> = flag_offices(state, &mut events, flag)?.into_iter().collect();
        offices_of_flags.push(offices);
    }
    let mut out = String::with_capacity(256 * 1024);
    open_page(&mut out, "审计疑点与资金走势");
    let as_of = state.clock.map_or_else(|| "—".to_string(), |d| d.to_string());
    let amount: u64 = flags.iter().map(|f| f.amount_fen).sum();
    let _ = writeln!(
        out,
        "<header class=\"masthead\"><h1>审计疑点与资金走势</h1>\n<p class=\"meta\">{} · 数据截至 {as_of} · \
         疑点 {} 个，涉及金额 {} 元</p>\n<p class=\"meta\">本页列出涉及农户的疑点，仅限本机或签名请求访问；\
         疑点是需要核查的线索，不是结论。</p></header>",
        Escaped(state.ledger_name.as_deref().unwrap_or_default()),
        flags.len(),
        yuan(amount)
    );
    let size = ledger.head().size;
    if flags_as_of_size < size {
        // A large ledger's flags are evaluated in the background (server::flags).
        let _ = writeln!(
            out,
            "<p class=\"meta stale\">疑点按账本前 {flags_as_of_size} 条记录核查（账本现有 {size} 条），\
             将在后台自动更新。</p>"
        );
    }
    write_filters(&mut out, state, filter);
    write_by_rule(&mut out, flags);
    write_by_office(&mut out, state, flags, &offices_of_flags);
    write_charts(&mut out, state, &ledger.projections().notices, fund_offices);
    write_details(&mut out, state, flags, &offices_of_flags);
    close_page(&mut out);
    Ok(out)
}

fn option(out: &mut String, value: &str, label: &str, selected: bool) {
    let selected = if selected { " selected" } else { "" };
    let _ = write!(out, "<option value=\"{}\"{selected}>{}</option>", Escaped(value), Escaped(label));
}

fn sorted_offices(state: &State) -> Vec<(&String, &crate::state::OfficeState)> {
    let mut offices: Vec<_> = state.offices.iter().collect();
    offices.sort_by(|a, b| (a.1.level, a.0).cmp(&(b.1.level, b.0)));
    offices
}

fn write_filters(out: &mut String, state: &State, filter: &FlagFilter) {
    out.push_str("<form class=\"filters\" method=\"get\" action=\"/audit\">\n<label>规则<select name=\"rule\">");
    option(out, "", "全部", filter.rule.is_none());
    for rule in Rule::ALL {
        option(out, rule.name(), &format!("{} {}", rule.chinese(), rule.name()), filter.rule == Some(rule));
    }
    out.push_str("</select></label>\n<label>单位（含下级）<select name=\"office\">");
    option(out, "", "全部", filter.office.is_none());
    for (id, office) in sorted_offices(state) {
        let label = format!("{} {}", level_label(office.level), office.name);
        option(out, id, &label, filter.office.as_deref() == Some(id.as_str()));
    }
    out.push_str("</select></label>\n<label>严重程度<select name=\"severity\">");
    option(out, "", "全部", filter.severity.is_none());
    for severity in SEVERITIES.into_iter().rev() {
        option(out, &snake_name(&severity), severity_label(severity), filter.severity == Some(severity));
    }
    out.push_str("</select></label>\n<button type=\"submit\">筛选</button></form>\n");
}

fn write_by_rule(out: &mut String, flags: &[Flag]) {
    out.push_str(
        "<h2 id=\"rules\">一、按规则和严重程度</h2>\n<div class=\"wrap\"><table class=\"cards\"><thead><tr><th>规则</th>\
         <th class=\"num\">高</th><th class=\"num\">中</th><th class=\"num\">低</th><th class=\"num\">合计</th>\
         <th class=\"num\">涉及金额（元）</th></tr></thead>\n<tbody>\n",
    );
    for rule in Rule::ALL {
        let of_rule: Vec<&Flag> = flags.iter().filter(|f| f.rule == rule).collect();
        if of_rule.is_empty() {
            continue;
        }
        let count = |severity| of_rule.iter().filter(|f| f.severity == severity).count();
        let amount: u64 = of_rule.iter().map(|f| f.amount_fen).sum();
        let _ = writeln!(
            out,
            "<tr><td data-label=\"规则\"><a href=\"#rule-{0}\">{1}</a> <span class=\"note\">{0}</span></td>\
             <td data-label=\"高\" class=\"num\">{2}</td><td data-label=\"中\" class=\"num\">{3}</td>\
             <td data-label=\"低\" class=\"num\">{4}</td><td data-label=\"合计\" class=\"num\">{5}</td>\
             <td data-label=\"涉及金额（元）\" class=\"num\">{6}</td></tr>",
            rule.name(),
            rule.chinese(),
            count(Severity::High),
            count(Severity::Medium),
            count(Severity::Low),
            of_rule.len(),
            yuan(amount)
        );
    }
    if flags.is_empty() {
        out.push_str("<tr><td colspan=\"6\">没有符合条件的疑点。</td></tr>\n");
    }
    out.push_str("</tbody></table></div>\n");
}

fn write_by_office(out: &mut String, state: &State, flags: &[Flag], offices_of_flags: &[BTreeSet<String>]) {
    let mut by_office: BTreeMap<&str, (usize, u64)> = BTreeMap::new();
    for (flag, offices) in flags.iter().zip(offices_of_flags) {
        for office in offices {
            let entry = by_office.entry(office.as_str()).or_default();
            entry.0 += 1;
            entry.1 += flag.amount_fen;
        }
    }
    out.push_str(
        "<h2 id=\"offices\">二、按单位</h2>\n<p class=\"note\">一个疑点计入它涉及的每个单位：对象所在单位（账户、农户所在村、项目）\
         和证据事件的经办单位。</p>\n<div class=\"wrap\"><table class=\"cards\"><thead><tr><th>单位</th><th>层级</th>\
         <th class=\"num\">疑点</th><th class=\"num\">涉及金额（元）</th></tr></thead>\n<tbody>\n",
    );
    let mut rows: Vec<(&str, (usize, u64))> = by_office.into_iter().collect();
    rows.sort_by_key(|(office, (count, _))| (std::cmp::Reverse(*count), *office));
    for (office, (count, amount)) in rows {
        let level = state.offices.get(office).map_or("", |o| level_label(o.level));
        let _ = writeln!(
            out,
            "<tr><td data-label=\"单位\"><a href=\"/audit?office={0}\">{1}</a></td><td data-label=\"层级\">{2}</td>\
             <td data-label=\"疑点\" class=\"num\">{3}</td><td data-label=\"涉及金额（元）\" class=\"num\">{4}</td></tr>",
            Escaped(office),
            Escaped(&office_name(state, office)),
            level,
            count,
            yuan(amount)
        );
    }
    out.push_str("</tbody></table></div>\n");
}

/// Offices that hold an account with a fund flag (idle or stalled money).
pub fn offices_with_fund_flags(flags: &[Flag]) -> BTreeSet<String> {
    flags
        .iter()
        .filter(|f| f.subject.kind == SubjectKind::Account)
        .filter_map(|f| f.subject.id.split_once('/').map(|(office, _)| office.to_string()))
        .collect()
}

fn write_charts(out: &mut String, state: &State, index: &NoticeIndex, flagged: &BTreeSet<String>) {
    out.push_str(
        "<h2 id=\"charts\">三、各单位资金结存走势（按月末，万元）</h2>\n<p class=\"note\">每根柱是一个月末该单位全部资金账户的结存\
         （按业务日期累计）。钱应当一路往下走：上级单位的柱子应当很快回落到零，乡村一级长期不降的柱子值得一问。\
         红色表示该单位有资金闲置或截留疑点。</p>\n<div class=\"charts\">\n",
    );
    let Some(clock) = state.clock else {
        out.push_str("<p>账本还没有资金事件。</p></div>\n");
        return;
    };
    let Some(first) = index.first_month() else {
        out.push_str("<p>账本还没有资金事件。</p></div>\n");
        return;
    };
    let mut offices: Vec<&str> = index.offices_with_funds().filter(|o| state.offices.contains_key(*o)).collect();
    offices.sort_by_key(|o| (state.offices[*o].level, *o));
    for office in offices {
        let until = Month::of(clock);
        let series = index.held_by_month(office, first.max(until.minus(CHART_MONTHS_MAX - 1)), until);
        if series.is_empty() {
            continue;
        }
        let found = &state.offices[office];
        let now = series.last().map_or(0, |(_, held)| *held);
        let _ = writeln!(
            out,
            "<figure class=\"chart\"><figcaption>{} <span class=\"note\">{} · 当前结存 {} 元</span></figcaption>\n{}</figure>",
            Escaped(&found.name),
            level_label(found.level),
            signed_yuan(now),
            held_chart(&found.name, &series, flagged.contains(office))
        );
    }
    out.push_str("</div>\n");
}

fn signed_yuan(fen: i128) -> String {
    let magnitude = yuan(u64::try_from(fen.unsigned_abs()).unwrap_or(u64::MAX));
    if fen < 0 {
        format!("-{magnitude}")
    } else {
        magnitude
    }
}

/// A bar chart of month-end balances (万元), with a hover title per bar.
pub fn held_chart(name: &str, series: &[(Month, i128)], flagged: bool) -> String {
    let values: Vec<f64> = series.iter().map(|(_, fen)| *fen as f64 / FEN_PER_WAN_YUAN).collect();
    let top = values.iter().copied().fold(0.0f64, f64::max);
    let bottom = values.iter().copied().fold(0.0f64, f64::min);
    let span = if top - bottom > 0.0 { top - bottom } else { 1.0 };
    let plot_width = CHART_WIDTH - CHART_LEFT - CHART_RIGHT;
    let plot_height = CHART_HEIGHT - CHART_TOP - CHART_BOTTOM;
    let y = |value: f64| CHART_TOP + (top - value) / span * plot_height;
    let step = plot_width / values.len().max(1) as f64;
    let fill = if flagged { "#b3261e" } else { "#3f6fa8" };
    let mut svg = String::new();
    let _ = write!(
        svg,
        "<svg viewBox=\"0 0 {CHART_WIDTH} {CHART_HEIGHT}\" role=\"img\" aria-label=\"{} 月末结存\" \
         xmlns=\"http://www.w3.org/2000/svg\" font-size=\"10\" font-family=\"sans-serif\">",
        Escaped(name)
    );
    let (right, label_x) = (CHART_WIDTH - CHART_RIGHT, CHART_LEFT - 4.0);
    for value in [top, (top + bottom) / 2.0, bottom] {
        let (line_y, label) = (y(value), wan_label(value));
        let text_y = line_y + 3.5;
        let _ = write!(
            svg,
            "<line x1=\"{CHART_LEFT}\" x2=\"{right:.1}\" y1=\"{line_y:.1}\" y2=\"{line_y:.1}\" stroke=\"#ddd\"/>\
             <text x=\"{label_x:.1}\" y=\"{text_y:.1}\" text-anchor=\"end\" fill=\"#555\">{label}</text>"
        );
    }
    let zero = y(0.0);
    for (position, ((month, fen), value)) in series.iter().zip(&values).enumerate() {
        let x = CHART_LEFT + step * position as f64 + step * 0.15;
        let (bar_top, height) = if *value >= 0.0 { (y(*value), zero - y(*value)) } else { (zero, y(*value) - zero) };
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{bar_top:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{fill}\">\
             <title>{month} 月末结存 {} 元</title></rect>",
            step * 0.7,
            height.max(0.5),
            signed_yuan(*fen)
        );
        // Months 1, 1 + every, … are labelled; January carries the year.
        let every = if series.len() > 14 {
            3
        } else if series.len() > 7 {
            2
        } else {
            1
        };
        if (month.month - 1) % every == 0 {
            let label = if month.month == 1 { format!("{}年", month.year) } else { format!("{}月", month.month) };
            let _ = write!(
                svg,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{label}</text>",
                x + step * 0.35,
                CHART_HEIGHT - CHART_BOTTOM + 14.0
            );
        }
    }
    let _ = write!(
        svg,
        "<line x1=\"{CHART_LEFT}\" x2=\"{:.1}\" y1=\"{zero:.1}\" y2=\"{zero:.1}\" stroke=\"#888\"/></svg>",
        CHART_WIDTH - CHART_RIGHT
    );
    svg
}

fn wan_label(value: f64) -> String {
    if value.abs() >= 100.0 || value == 0.0 {
        format!("{value:.0}万")
    } else {
        format!("{value:.1}万")
    }
}

fn write_details(out: &mut String, state: &State, flags: &[Flag], offices_of_flags: &[BTreeSet<String>]) {
    out.push_str("<h2 id=\"details\">四、疑点明细</h2>\n");
    if flags.len() > FLAGS_SHOWN_MAX {
        let _ = writeln!(out, "<p class=\"warn\">疑点较多，只列出前 {FLAGS_SHOWN_MAX} 个；请按规则或单位筛选。</p>");
    }
    let shown = &flags[..flags.len().min(FLAGS_SHOWN_MAX)];
    if shown.is_empty() {
        out.push_str("<p>没有符合条件的疑点。</p>\n");
        return;
    }
    out.push_str(
        "<div class=\"wrap\"><table class=\"cards\"><thead><tr><th>严重程度</th><th>对象</th><th>单位</th>\
         <th class=\"num\">涉及金额（元）</th><th>说明</th><th>证据记录</th><th>复核</th><th>疑点编号</th></tr></thead>\n",
    );
    for rule in Rule::ALL {
        let of_rule: Vec<(&Flag, &BTreeSet<String>)> =
            shown.iter().zip(offices_of_flags).filter(|(f, _)| f.rule == rule).collect();
        if of_rule.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "<tbody><tr class=\"group\" id=\"rule-{0}\"><th colspan=\"8\">{1} <span class=\"note\">{0} · {2} 个</span></th></tr>",
            rule.name(),
            rule.chinese(),
            of_rule.len()
        );
        for (flag, offices) in of_rule {
            write_flag_row(out, state, flag, offices);
        }
        out.push_str("</tbody>\n");
    }
    out.push_str("</table></div>\n");
}

fn write_flag_row(out: &mut String, state: &State, flag: &Flag, offices: &BTreeSet<String>) {
    let severity = snake_name(&flag.severity);
    let mut evidence: Vec<String> = flag
        .evidence
        .iter()
        .take(EVIDENCE_LINKS_MAX)
        .map(|seq| format!("<a href=\"/v1/records/{seq}\">#{seq}</a>"))
        .collect();
    if flag.evidence.len() > EVIDENCE_LINKS_MAX {
        evidence.push(format!("等 {} 条", flag.evidence.len()));
    }
    let review = match flag.review {
        Some(review) => {
            format!("{}：{}", review_label(review), Escaped(flag.review_note.as_deref().unwrap_or_default()))
        }
        None => "未复核".to_string(),
    };
    let names: Vec<String> = offices.iter().map(|o| office_name(state, o)).collect();
    let _ = writeln!(
        out,
        "<tr><td data-label=\"严重程度\"><span class=\"badge {severity}\">{}</span></td><td data-label=\"对象\">{}</td>\
         <td data-label=\"单位\">{}</td><td data-label=\"涉及金额（元）\" class=\"num\">{}</td>\
         <td data-label=\"说明\">{}</td><td data-label=\"证据记录\">{}</td><td data-label=\"复核\">{review}</td>\
         <td data-label=\"疑点编号\" class=\"mono\">{}</td></tr>",
        severity_label(flag.severity),
        Escaped(&shown_subject(flag)),
        Escaped(&names.join("、")),
        yuan(flag.amount_fen),
        Escaped(&flag.message),
        evidence.join(" "),
        Escaped(&flag.flag_id)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_one_bar_per_month_and_titles() {
        let series: Vec<(Month, i128)> =
            (1..=12).map(|m| (Month { year: 2019, month: m }, i128::from(m) * 1_000_000)).collect();
        let svg = held_chart("<村>", &series, false);
        assert_eq!(svg.matches("<rect").count(), 12);
        assert!(svg.contains("2019-12 月末结存 120000.00 元"));
        assert!(svg.contains("&lt;村&gt;"));
        assert!(!svg.contains("NaN"));
    }

    #[test]
    fn chart_of_zeros_and_negatives_is_finite() {
        let series = vec![(Month { year: 2019, month: 1 }, 0), (Month { year: 2019, month: 2 }, -500)];
        let svg = held_chart("x", &series, true);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        assert!(svg.contains("-5.00"));
    }
}
