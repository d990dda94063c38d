#!/usr/bin/env bash
# Quickstart: builds sunledger, makes fresh keys, creates a ledger in
# ./quickstart-data (sled, embedded), records a small fund flow — province
# appropriates, passes money to a county, the county pays a household —
# then exports the chain and verifies it as an auditor would.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
bin=target/release/sunledger
work=${1:-quickstart-data}
if [ -e "$work" ]; then
  echo "$work exists; remove it or give another directory" >&2
  exit 2
fi
mkdir -p "$work/keys"
k="$work/keys"
for id in root/k1 log/k1 420000/k1 420000/k2 422822/k1 422822-fpb/k1 422822101201/k1; do
  $bin keygen --key-id "$id" --out "$k/${id//\//_}.key" >/dev/null
done
pub() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["public_key"])' "$1"; }
$bin init --data "$work/ledger" --ledger qs-ledger --name "快速上手账本" \
  --root-key "$k/root_k1.key" --log-key "$k/log_k1.key" --at 2019-01-01

events="$work/events.jsonl"
: > "$events"
add() { # add KEYFILE[,KEYFILE2] PAYLOAD_JSON
  local keys=() ; IFS=, read -ra files <<< "$1"
  for f in "${files[@]}"; do keys+=(--key "$k/$f"); done
  printf '%s' "$2" | $bin sign "${keys[@]}" >> "$events"
}
P() { printf '{"v":1,"ledger":"qs-ledger","id":"%s","kind":"%s","office":"%s","at":"%s","body":%s}' "$@"; }
add root_k1.key "$(P e1 office_register root 2019-01-01 "{\"office_id\":\"420000\",\"name\":\"省财政厅\",\"level\":\"province\",\"parent\":null,\"region_code\":\"420000\",\"keys\":[{\"key_id\":\"420000/k1\",\"public_key\":\"$(pub $k/420000_k1.key)\",\"roles\":[\"admin\",\"finance\"]},{\"key_id\":\"420000/k2\",\"public_key\":\"$(pub $k/420000_k2.key)\",\"roles\":[\"finance\"]}]}")"
add 420000_k1.key "$(P e2 office_register 420000 2019-01-01 "{\"office_id\":\"422822\",\"name\":\"县财政局\",\"level\":\"county\",\"parent\":\"420000\",\"region_code\":\"422822\",\"contact\":\"12345\",\"keys\":[{\"key_id\":\"422822/k1\",\"public_key\":\"$(pub $k/422822_k1.key)\",\"roles\":[\"admin\",\"finance\"]}]}")"
add 420000_k1.key "$(P e3 office_register 420000 2019-01-01 "{\"office_id\":\"422822-fpb\",\"name\":\"县扶贫办\",\"level\":\"county\",\"parent\":\"420000\",\"region_code\":\"422822\",\"keys\":[{\"key_id\":\"422822-fpb/k1\",\"public_key\":\"$(pub $k/422822-fpb_k1.key)\",\"roles\":[\"registrar\"]}]}")"
add 422822_k1.key "$(P e4 office_register 422822 2019-01-01 "{\"office_id\":\"422822101201\",\"name\":\"三里坝村\",\"level\":\"village\",\"parent\":\"422822\",\"region_code\":\"422822101201\",\"keys\":[{\"key_id\":\"422822101201/k1\",\"public_key\":\"$(pub $k/422822101201_k1.key)\",\"roles\":[\"registrar\"]}]}")"
add root_k1.key "$(P e5 program_define root 2019-01-01 '{"program_id":"ranger","name":"生态护林员补助","earmarked":true,"payee":"household","standard_fen":400000,"cap_fen_per_year":400000,"period":"year"}')"
add 420000_k1.key,420000_k2.key "$(P e6 appropriate 420000 2019-01-02 '{"program":"ranger","amount_fen":100000000,"budget_ref":"鄂财农发〔2019〕1号","fiscal_year":2019}')"
add 420000_k1.key "$(P e7 transfer 420000 2019-01-05 '{"to_office":"422822","program":"ranger","amount_fen":1200000,"doc_ref":"鄂财农发〔2019〕2号"}')"
add 422822-fpb_k1.key "$(P e8 household_register 422822-fpb 2019-01-06 '{"household_id":"422822101201-0001","village":"422822101201","head_name_masked":"张*三","members":[{"person_digest":"1111111111111111111111111111111111111111111111111111111111111111","name_masked":"张*三"}],"card":{"card_digest":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","card_masked":"6228********1234","bank":"湖北农信"}}')"
add 422822_k1.key "$(P e9 notice_publish 422822 2019-01-07 '{"notice_id":"n1","scope":"payout_roster","program":"ranger","period":"2019","households":["422822101201-0001"],"from":"2019-01-07","to":"2019-01-14","document_digest":"cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"}')"
add 422822_k1.key "$(P e10 payout 422822 2019-01-20 '{"household_id":"422822101201-0001","program":"ranger","amount_fen":400000,"period":"2019","card_digest":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}')"

$bin import --data "$work/ledger" "$events"
$bin export --data "$work/ledger" --out "$work/export.jsonl"
echo "== an auditor verifies the export (sunledger, then the independent Python verifier)"
$bin verify "$work/export.jsonl"
python3 tools/verify.py "$work/export.jsonl"
echo "== balances"
$bin balance --data "$work/ledger"
