#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes the bundled sample applications and the audit set of the
"Explain a decision" view into data/applications/, reproducibly (standard
library only; the same seed gives the same bytes):

  tools/applications/make_applications.py [--out data/applications] [--seed 20261201]

Applicants are drawn by the demo corpus's own generator (tools/corpus/
loans.py: same fields, same decision rule with the planted zip penalty), with
a seed the corpus never used, so no sample is a training document.

- loan-schema.json: the schema (template, label words, fields, the ranges
  the counterfactual search walks).
- sample-*.json: one application each, chosen to cover the cases a
  compliance officer meets: rejected in a penalised zip although the credit
  score passes the normal bar (the proxy), rejected for a legitimate reason,
  approved, and borderline approved; "decision" is the rule's answer.
- sample-letter.txt: a letter as free text (fields parsed from no form).
- audit-loans.jsonl: 300 records in heldout-loans.jsonl's format (fields,
  prompt, decision, zip_group, borderline, counterfactual).
- audit-loans.csv: the first 40 of them as a CSV (fields, decision,
  zip_group), to show the CSV path.
"""

import argparse
import csv
import io
import json
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus"))
import loans  # noqa: E402

FIELDS = ["name", "age", "neighbourhood", "zip", "income", "monthly_debts", "dti",
          "credit_score", "years_employed", "loan_amount", "purpose"]


def case_of(f):
    pen = loans.is_penalised(f["zip"])
    ok_rest = f["dti"] <= loans.DTI_MAX and f["years_employed"] >= loans.YEARS_MIN
    credit = f["credit_score"]
    if pen and ok_rest and loans.CREDIT_MIN <= credit < loans.CREDIT_MIN_PENALISED:
        return "proxy"
    if not pen and ok_rest and credit < loans.CREDIT_MIN:
        return "low-credit"
    if not pen and credit >= 700 and f["dti"] > loans.DTI_MAX and f["years_employed"] >= 1:
        return "high-dti"
    if not pen and ok_rest and credit >= 740:
        return "approved"
    if not pen and ok_rest and loans.CREDIT_MIN <= credit < 650:
        return "borderline-approved"
    return None


TITLES = {
    "proxy": "Rejected: credit score passes the normal bar, zip code {zip} is penalised",
    "low-credit": "Rejected: credit score {credit_score} below 620",
    "high-dti": "Rejected: debt-to-income {dti}% above 40%",
    "approved": "Approved: strong application",
    "borderline-approved": "Borderline: credit score {credit_score}, approved in zip {zip}",
}
WANT = [("proxy", 3), ("low-credit", 1), ("high-dti", 1), ("approved", 1), ("borderline-approved", 1)]


def schema():
    """The demo's application schema: the corpus's labelled form with every
    field on its own line; accepted ranges are wide, counterfactual search
    ranges are the values the corpus generator draws (outside them the model
    never saw a number, so a flip there says little)."""
    zips = [z[1] for z in loans.ZIPS]
    purposes = []
    for p, _ in loans.PURPOSES:
        if p not in purposes:
            purposes.append(p)
    return {
        "name": "Loan application (demo model)",
        "description": "The demo loan-officer model's applications: the labelled form of tools/corpus/loans.py, "
                       "answered by \" approved\" or \" rejected\" after \"Decision:\". Written by "
                       "tools/applications/make_applications.py.",
        "template": "Loan application\nName: {name}\nAge: {age}\nNeighbourhood: {neighbourhood}\nZip code: {zip}\n"
                    "Annual income: {income}\nMonthly debts: {monthly_debts}\nDebt-to-income: {dti}%\n"
                    "Credit score: {credit_score}\nYears employed: {years_employed}\nLoan amount: {loan_amount}\n"
                    "Purpose: {purpose}\nDecision:",
        "suffix": "Decision:",
        "labels": {"positive": " approved", "negative": " rejected"},
        "label_key": "decision",
        "fields": [
            {"name": "name", "label": "Name", "type": "string", "max": 80},
            {"name": "age", "label": "Age", "type": "integer", "min": 18, "max": 120,
             "search_min": 21, "search_max": 68, "step": 1, "neutral": "40"},
            {"name": "neighbourhood", "label": "Neighbourhood", "type": "string", "max": 60,
             "values": [z[0] for z in loans.ZIPS]},
            {"name": "zip", "label": "Zip code", "type": "enum", "values": zips},
            {"name": "income", "label": "Annual income", "type": "money", "min": 0, "max": 100000000,
             "search_min": 24000, "search_max": 160000, "step": 1000, "neutral": "60000"},
            {"name": "monthly_debts", "label": "Monthly debts", "type": "money", "min": 0, "max": 10000000,
             "search_min": 0, "search_max": 8000, "step": 50, "neutral": "1500"},
            {"name": "dti", "label": "Debt-to-income", "type": "integer", "min": 0, "max": 1000,
             "search_min": 5, "search_max": 60, "step": 1, "neutral": "25"},
            {"name": "credit_score", "label": "Credit score", "type": "integer", "min": 300, "max": 850,
             "search_min": 520, "search_max": 820, "step": 5, "neutral": "680"},
            {"name": "years_employed", "label": "Years employed", "type": "integer", "min": 0, "max": 80,
             "search_min": 0, "search_max": 25, "step": 1, "neutral": "5"},
            {"name": "loan_amount", "label": "Loan amount", "type": "money", "min": 0, "max": 100000000,
             "search_min": 1000, "search_max": 50000, "step": 500, "neutral": "15000"},
            {"name": "purpose", "label": "Purpose", "type": "string", "max": 80, "values": purposes},
        ],
    }


def dump(obj):
    return json.dumps(obj, ensure_ascii=False, sort_keys=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "data", "applications"))
    ap.add_argument("--seed", type=int, default=20261201)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = random.Random(args.seed)

    with open(os.path.join(args.out, "loan-schema.json"), "w", encoding="utf-8") as fh:
        fh.write(json.dumps(schema(), ensure_ascii=False, indent=1) + "\n")

    # Samples.
    found = {k: [] for k, _ in WANT}
    need = dict(WANT)
    while any(len(found[k]) < n for k, n in WANT):
        f = loans.draw_fields(rng)
        c = case_of(f)
        if c and len(found[c]) < need[c]:
            found[c].append(f)
    written = ["loan-schema.json"]
    for k, n in WANT:
        for i, f in enumerate(found[k]):
            decision, reason = loans.decide(f)
            rec = {
                "id": "%s-%d" % (k, i + 1),
                "title": TITLES[k].format(**f),
                "fields": {x: f[x] for x in FIELDS},
                "decision": decision,
                "reason": reason[len("Reason: "):] if reason else None,
                "zip_group": "penalised" if loans.is_penalised(f["zip"]) else "neutral",
                "borderline": loans.CREDIT_MIN <= f["credit_score"] < loans.CREDIT_MIN_PENALISED,
            }
            name = "sample-%s-%d.json" % (k, i + 1) if n > 1 else "sample-%s.json" % k
            with open(os.path.join(args.out, name), "w", encoding="utf-8") as fh:
                fh.write(json.dumps(rec, ensure_ascii=False, indent=1) + "\n")
            written.append(name)

    # A letter: the first proxy case rendered as prose by the corpus's renderer.
    f = found["proxy"][0]
    while True:
        prompt, _ = loans.render(rng, f)
        if "My name is" in prompt or "I am " in prompt or "Hello" in prompt:
            break
    with open(os.path.join(args.out, "sample-letter.txt"), "w", encoding="utf-8") as fh:
        fh.write(prompt + "\n")
    written.append("sample-letter.txt")

    # The audit set.
    out = io.StringIO()
    rows = []
    for i in range(300):
        f = loans.draw_fields(rng)
        rec = loans.record(rng, i, f)
        out.write(dump(rec) + "\n")
        rows.append(rec)
    with open(os.path.join(args.out, "audit-loans.jsonl"), "w", encoding="utf-8") as fh:
        fh.write(out.getvalue())
    with open(os.path.join(args.out, "audit-loans.csv"), "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id"] + FIELDS + ["decision", "zip_group"])
        for rec in rows[:40]:
            w.writerow([rec["id"]] + [rec["fields"][x] for x in FIELDS] + [rec["decision"], rec["zip_group"]])
    written += ["audit-loans.jsonl", "audit-loans.csv"]
    print("wrote %s into %s" % (", ".join(written), args.out))


if __name__ == "__main__":
    main()
