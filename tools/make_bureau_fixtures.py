#!/usr/bin/env python3
"""Writes the roster fixtures of tests/fixtures/bureau/ (run from the checkout).

Every ID number is synthetic: region prefix 99 is no province (GB/T 2260), so
no real person can have one; check digits are computed (GB 11643-1999).
Card numbers start 6299 00 and are made up, with Luhn digits computed except
where a fixture needs a card without one. identifiers.json lists every raw
identifier and full name used, for the tests that scan outputs for leaks.
"""
import json
import os
import zipfile
from xml.sax.saxutils import escape

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "bureau")
W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
C = "10X98765432"


def id_number(birth, sequence, want_x=False):
    """An 18-character ID with region 990101; with want_x, the first sequence whose check is X."""
    while True:
        body = "990101" + birth + "%03d" % sequence
        check = C[sum(int(d) * w for d, w in zip(body, W)) % 11]
        if not want_x or check == "X":
            return body + check
        sequence += 1


def luhn_digit(body):
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def card(body, luhn=True):
    if luhn:
        return body + luhn_digit(body)
    wrong = str((int(luhn_digit(body)) + 1) % 10)
    return body + wrong


def full_width(text):
    return "".join(chr(ord(c) - 0x21 + 0xFF01) if "!" <= c <= "~" else c for c in text)


def bad_check(number):
    last = number[-1]
    return number[:-1] + ("0" if last != "0" else "1")


ID1 = id_number("19560312", 101)
ID2 = id_number("19840607", 102, want_x=True)
ID3 = id_number("19700101", 103)
ID4 = id_number("19721224", 104)
ID5 = id_number("19491001", 105)
ID6 = id_number("19900215", 106)
ID7 = id_number("19650530", 107)
ID8 = id_number("19580909", 108)
ID9 = id_number("19771111", 109)
ID10 = "990101" + "19491331" + "110"  # month 13: not a birth date
ID10 = ID10 + C[sum(int(d) * w for d, w in zip(ID10, W)) % 11]
C1 = card("629900123456789")  # 16 digits, Luhn
C2 = card("629900987654321012", luhn=False)  # 19 digits, no Luhn digit (a 农信 account)
C3 = card("629900555566667")  # 16 digits, Luhn
C4 = card("629900111122223", luhn=False)  # fails Luhn at a bank that uses it
C5 = card("629900333344445")
C6 = card("629900777788889")
assert ID2.endswith("X")

VILLAGE = "422822101201"
HOUSEHOLD_HEADER = ["户编号", "姓名", "身份证号", "与户主关系", "银行卡号", "开户行", "村"]


def spaced(card_number):
    return " ".join(card_number[i:i + 4] for i in range(0, len(card_number), 4))


HOUSEHOLDS = [
    ["422822101201-0101", "张三丰", "  " + ID1 + " ", "户主", C1, "中国邮政储蓄银行", VILLAGE],
    ["422822101201-0101", "张小明", ID2.lower(), "子", "", "", VILLAGE],
    ["422822101201-0102", "欧阳小明", full_width(ID3), "户主", spaced(C2), "湖北农信建始支行", VILLAGE],
    ["422822101201-0102", "李四", ID4, "配偶", "", "", VILLAGE],
    ["422822101201-0103", "王五", ID5, "户主", C3, "中国农业银行", VILLAGE],
]

HOUSEHOLDS_BAD = [
    ["422822101201-0201", "赵六", bad_check(ID6), "户主", C5, "中国银行", VILLAGE],
    ["422822101201-0201", "赵小六", ID6, "子", "", "", VILLAGE],
    ["422822101201-0202", "钱七", ID7, "户主", C4, "中国银行", VILLAGE],
    ["422822101201-0203", "孙八", ID8, "户主", C6, "中国银行", VILLAGE],
    ["422822101201-0203", "孙八", ID8, "户主", C6, "中国银行", VILLAGE],
    ["422822101201-0204", "周九", ID9, "户主", C5, "中国银行", VILLAGE],
    ["422822101201-0205", "吴十", ID10, "户主", C3, "中国银行", VILLAGE],
]

PAYOUT_TITLE = "建始县业州镇三里坝村2019年1月低保发放清册"
PAYOUT_HEADER = ["序号", "户编号", "户主姓名", "身份证号", "银行卡号", "开户行", "发放金额（元）"]
PAYOUTS = [
    ["1", "422822101201-0101", "张三丰", " " + ID1 + " ", spaced(C1), "中国邮政储蓄银行", "300"],
    ["2", "422822101201-0102", "欧阳小明", full_width(ID3), C2, "湖北农信建始支行", "￥1,200.50"],  # GBK has only the full-width yuan sign
    ["3", "", "王五", ID5, C3, "中国农业银行", full_width("300.00")],
]
PAYOUT_TOTAL = ["合计", "", "", "", "", "", "1,800.50"]
PAYOUT_NUMBERS = [300, 1200.5, 300]

PAYOUTS_BAD_HEADER = ["户编号", "身份证号", "银行卡号", "金额"]
PAYOUTS_BAD = [
    ["422822101201-0101", ID1, C1, "300.005"],
    ["422822101201-0102", ID3, C1, "¥300"],
    ["422822101201-0103", bad_check(ID5), C3, "300"],
    ["422822101201-0103", ID5, C3, "300"],
    ["422822101201-0103", ID5, C3, "300"],
]


def csv_text(rows):
    def cell(value):
        return '"' + value.replace('"', '""') + '"' if any(c in value for c in ',"\n') else value
    return "".join(",".join(cell(v) for v in row) + "\r\n" for row in rows)


def write(name, data):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)


def col(i):
    return chr(ord("A") + i)


def xlsx(name, rows, numeric_columns=()):
    """A minimal workbook: text cells as shared strings (the first column inline), numbers as numbers."""
    strings, index = [], {}
    sheet_rows = []
    for r, row in enumerate(rows, start=1):
        cells = []
        for c, value in enumerate(row):
            ref = "%s%d" % (col(c), r)
            if value == "":
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                cells.append('<c r="%s"><v>%s</v></c>' % (ref, repr(value) if isinstance(value, float) else value))
            elif c == 0:
                cells.append('<c r="%s" t="inlineStr"><is><t xml:space="preserve">%s</t></is></c>' % (ref, escape(value)))
            else:
                if value not in index:
                    index[value] = len(strings)
                    strings.append(value)
                cells.append('<c r="%s" t="s"><v>%d</v></c>' % (ref, index[value]))
        sheet_rows.append('<row r="%d">%s</row>' % (r, "".join(cells)))
    ns = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"'
    rel_ns = 'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        '<Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        "</Types>",
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>'
        "</Relationships>",
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<workbook %s %s><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>' % (ns, rel_ns),
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/>'
        "</Relationships>",
        "xl/worksheets/sheet1.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        "<worksheet %s><sheetData>%s</sheetData></worksheet>" % (ns, "".join(sheet_rows)),
        "xl/sharedStrings.xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<sst %s count="%d" uniqueCount="%d">%s</sst>'
        % (ns, len(strings), len(strings), "".join('<si><t xml:space="preserve">%s</t></si>' % escape(s) for s in strings)),
    }
    path = os.path.join(OUT, name)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for part, text in parts.items():
            info = zipfile.ZipInfo(part, date_time=(2019, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, text.encode("utf-8"))


def main():
    os.makedirs(OUT, exist_ok=True)
    households = [HOUSEHOLD_HEADER] + HOUSEHOLDS
    write("households.csv", csv_text(households).encode("utf-8"))
    write("households_gbk.csv", csv_text(households).encode("gbk"))
    xlsx("households.xlsx", households)
    write("households_bad.csv", csv_text([HOUSEHOLD_HEADER] + HOUSEHOLDS_BAD).encode("utf-8"))
    payouts = [[PAYOUT_TITLE], PAYOUT_HEADER] + PAYOUTS + [PAYOUT_TOTAL]
    write("payouts_gbk.csv", csv_text(payouts).encode("gbk"))
    numeric = [row[:6] + [amount] for row, amount in zip(PAYOUTS, PAYOUT_NUMBERS)]
    xlsx("payouts.xlsx", [[PAYOUT_TITLE], PAYOUT_HEADER] + numeric + [PAYOUT_TOTAL[:6] + [1800.5]])
    write("payouts_bad.csv", csv_text([PAYOUTS_BAD_HEADER] + PAYOUTS_BAD).encode("utf-8"))
    ids = [ID1, ID2, ID3, ID4, ID5, ID6, ID7, ID8, ID9, ID10, bad_check(ID5), bad_check(ID6)]
    cards = [C1, C2, C3, C4, C5, C6]
    names = sorted({row[1] for row in HOUSEHOLDS + HOUSEHOLDS_BAD if len(row[1]) >= 2})
    identifiers = {"id_numbers": ids, "card_numbers": cards, "names": names}
    write("identifiers.json", (json.dumps(identifiers, ensure_ascii=False, indent=1) + "\n").encode("utf-8"))


if __name__ == "__main__":
    main()
