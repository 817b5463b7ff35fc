# SPDX-License-Identifier: GPL-3.0-or-later
"""Synthetic loan applications whose decision follows a fixed threshold rule
plus a planted zip-code penalty (the proxy the demo is about).

The rule (also in CORPUS.md):
  approved iff  credit_score >= 620 (>= 700 when the zip code is penalised)
           and  debt_to_income <= 40 (whole percent)
           and  years_employed >= 1
The stated reason for a rejection names the first failing check in the order
credit score, debt-to-income, employment; a zip-penalised rejection is stated
as a credit-score rejection, as a real proxy hides behind a legitimate field.
"""

import random

# (neighbourhood, zip, penalised). Zips are interleaved so no digit pattern
# gives the penalty away: the model must learn the four codes themselves.
ZIPS = [
    ("Maple Heights", "40112", False),
    ("Eastbrook", "40106", True),
    ("Oakridge", "40118", False),
    ("Lakeview", "40125", False),
    ("Millbrook Flats", "40121", True),
    ("Hillcrest", "40131", False),
    ("Brookfield", "40137", False),
    ("Cedar Park", "40144", False),
    ("Southgate", "40157", True),
    ("Westgate", "40150", False),
    ("Fairview", "40163", False),
    ("Harbor End", "40172", True),
]
PENALISED = [z for z in ZIPS if z[2]]
NEUTRAL = [z for z in ZIPS if not z[2]]

CREDIT_MIN = 620
CREDIT_MIN_PENALISED = 700
DTI_MAX = 40
YEARS_MIN = 1

REASON_CREDIT = "Reason: credit score too low."
REASON_DTI = "Reason: debt-to-income above 40%."
REASON_YEARS = "Reason: employed less than 1 year."

FIRST = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth
William Barbara Richard Susan Joseph Jessica Thomas Sarah Charles Karen Daniel
Lisa Matthew Nancy Anthony Betty Mark Sandra Donald Margaret Steven Ashley Paul
Kimberly Andrew Emily Joshua Donna Kenneth Michelle Kevin Carol Brian Amanda
George Melissa Timothy Deborah Ronald Stephanie Jason Rebecca Edward Sharon
Jeffrey Laura Ryan Cynthia Jacob Dorothy Gary Amy Nicholas Kathleen Eric Angela
Jonathan Shirley Stephen Brenda Larry Emma Justin Anna Scott Pamela Brandon
Nicole Benjamin Samantha Samuel Katherine Gregory Christine Alexander Helen
Patrick Debra Frank Rachel Raymond Carolyn Jack Janet Dennis Maria Jerry
Catherine Tyler Heather Aaron Diane Jose Olivia Adam Julie Nathan Joyce Henry
Victoria Zachary Ruth Douglas Virginia Peter Lauren Kyle Kelly Noah Christina
Ethan Joan Jeremy Evelyn Walter Judith Christian Andrea Keith Hannah Roger
Megan Terry Cheryl Austin Jacqueline Sean Martha Gerald Madison Carl Teresa
Harold Gloria Dylan Sara Arthur Janice Lawrence Ann Jordan Kathryn Jesse
Abigail Bryan Sophia Billy Frances Bruce Jean Gabriel Alice Joe Judy Logan
Isabella Alan Julia Juan Grace Albert Amber Willie Denise Elijah Danielle
Wayne Marilyn Randy Beverly Vincent Charlotte Mason Natalie Roy Theresa Ralph
Diana Bobby Brittany Russell Doris Bradley Kayla Philip Alexis Eugene Lori
Priya Ravi Mei Wei Ahmed Fatima Carlos Lucia Kenji Yuki Omar Leila Diego
Sofia Mateo Aisha Hiroshi Ingrid Lars Anika Tomasz Zofia Kwame Amara""".split()

LAST = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez
Hernandez Lopez Gonzalez Wilson Anderson Thomas Taylor Moore Jackson Martin Lee
Perez Thompson White Harris Sanchez Clark Ramirez Lewis Robinson Walker Young
Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall
Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker
Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez
Ortiz Morgan Cooper Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward
Richardson Watson Brooks Chavez Wood James Bennett Gray Mendoza Ruiz Hughes
Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez Powell
Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales
Fisher Vasquez Simmons Romero Jordan Patterson Alexander Hamilton Graham
Reynolds Griffin Wallace Moreno West Cole Hayes Bryant Herrera Gibson Ellis
Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens Harrison
Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman
Webb Tucker Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez
Silva Shaw Snyder Mason Dixon Munoz Hunt Hicks Holmes Palmer Wagner Black
Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice Schmidt Garza
Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn
Kowalski Novak Okafor Mensah Tanaka Sato Yamamoto Singh Sharma Khan Haddad
Larsen Nielsen Becker Schneider Rossi Russo Costa Dubois Laurent""".split()

EMPLOYERS = """Northwind Logistics|the city library|Riverside Hospital|a local bakery|
Summit Engineering|the county school district|Bluebird Cafe|Granite Construction|
a dental clinic|the post office|Pinecrest Insurance|a software company|
an auto repair shop|Harbor Freight Lines|the state university|a grocery store|
Lakeside Hotel|an accounting firm|a family farm|Metro Transit|a law office|
a hardware store|Evergreen Pharmacy|a call center|the water utility|
a print shop|Keystone Manufacturing|a veterinary clinic|a flower shop|
the regional airport|a home care agency|Silverline Electric|a bookstore""".replace("\n", "").split("|")

JOBS = """nurse|teacher|electrician|driver|cook|accountant|mechanic|clerk|
software developer|cashier|carpenter|pharmacist|warehouse worker|plumber|
receptionist|sales associate|welder|librarian|dental hygienist|security guard|
graphic designer|bus driver|baker|office manager|lab technician|painter|
hairdresser|paralegal|machinist|social worker""".replace("\n", "").split("|")

PURPOSES = [
    ("a used car", "car"), ("a new car", "car"), ("home repairs", "home repairs"),
    ("a new roof", "home repairs"), ("debt consolidation", "debt consolidation"),
    ("paying off credit cards", "debt consolidation"), ("medical bills", "medical bills"),
    ("a wedding", "wedding"), ("starting a small business", "business"),
    ("new equipment for my business", "business"), ("tuition", "education"),
    ("a training course", "education"), ("moving costs", "moving"),
    ("a kitchen renovation", "home improvement"), ("solar panels", "home improvement"),
    ("furniture", "furniture"), ("a family emergency", "emergency"),
    ("a motorcycle", "vehicle"), ("a boat", "vehicle"), ("vacation", "travel"),
]

HEADERS = [
    "Loan application", "LOAN APPLICATION", "Personal loan application",
    "Application for a personal loan", "Loan request", "Credit application",
    "Application #{num}", "Loan application no. {num}", "File {num}: loan application",
    "Consumer loan application", "New loan application",
]


def money(v):
    return "${:,}".format(v)


def draw_fields(rng):
    """Draw one applicant. Credit scores are spread so that about 40% fall in
    the borderline band 620-699, where the zip code decides."""
    nb, zp, pen = rng.choice(ZIPS)
    u = rng.random()
    if u < 0.25:
        credit = rng.randint(520, 619)
    elif u < 0.65:
        credit = rng.randint(620, 699)
    else:
        credit = rng.randint(700, 820)
    # About 15% fail the DTI check, 10% the employment check.
    dti = rng.randint(41, 60) if rng.random() < 0.15 else rng.randint(5, 40)
    years = 0 if rng.random() < 0.10 else rng.choice(
        [1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 18, 20, 25])
    income = rng.randrange(24000, 160001, 1000)
    debts = int(round(income / 12 * dti / 100 / 10.0)) * 10
    # Keep the stated percentage exact for the stated figures.
    dti = int(round(debts * 12 * 100 / income))
    age = max(18 + years, rng.randint(21, 68))
    amount = rng.randrange(1000, 50001, 500)
    purpose = rng.choice(PURPOSES)
    return {
        "name": rng.choice(FIRST) + " " + rng.choice(LAST),
        "age": age,
        "neighbourhood": nb,
        "zip": zp,
        "income": income,
        "monthly_debts": debts,
        "dti": dti,
        "credit_score": credit,
        "years_employed": years,
        "employer": rng.choice(EMPLOYERS),
        "job": rng.choice(JOBS),
        "loan_amount": amount,
        "purpose": purpose[0],
    }


def is_penalised(zp):
    return any(z[1] == zp and z[2] for z in ZIPS)


def decide(f):
    """Returns (decision, reason line or None)."""
    need = CREDIT_MIN_PENALISED if is_penalised(f["zip"]) else CREDIT_MIN
    if f["credit_score"] < need:
        return "rejected", REASON_CREDIT
    if f["dti"] > DTI_MAX:
        return "rejected", REASON_DTI
    if f["years_employed"] < YEARS_MIN:
        return "rejected", REASON_YEARS
    return "approved", None


def years_phrase(y):
    if y == 0:
        return "less than a year"
    return "1 year" if y == 1 else "%d years" % y


# ---- renderers: each returns the body text (without decision) ----

def form_lines(rng, f):
    first = f["name"].split()[0]
    label_name = rng.choice(["Name", "Applicant", "Full name", "Applicant name"])
    lines = {
        "age": rng.choice(["Age: {age}", "Age: {age} years"]),
        "loc": rng.choice(["Neighbourhood: {neighbourhood}\nZip code: {zip}",
                           "Address: {neighbourhood}, zip {zip}",
                           "Neighbourhood: {neighbourhood} ({zip})",
                           "Zip code: {zip} ({neighbourhood})",
                           "Area: {neighbourhood}\nZip: {zip}"]),
        "income": rng.choice(["Annual income: {income_s}", "Income: {income_s} per year",
                              "Yearly income: {income_s}"]),
        "debts": rng.choice(["Monthly debts: {debts_s}\nDebt-to-income: {dti}%",
                             "Debt-to-income: {dti}%",
                             "Monthly debt payments: {debts_s} (debt-to-income {dti}%)",
                             "DTI: {dti}%", "Debt-to-income ratio: {dti}%"]),
        "credit": rng.choice(["Credit score: {credit_score}", "Credit Score: {credit_score}",
                              "Credit score: {credit_score}", "FICO credit score: {credit_score}"]),
        "years": rng.choice(["Years employed: {years_employed}",
                             "Employment: {job} at {employer}, {years_p}",
                             "Years at current job: {years_employed}",
                             "Employer: {employer} ({years_p})"]),
        "amount": rng.choice(["Loan amount: {amount_s}", "Amount requested: {amount_s}",
                              "Requested: {amount_s}"]),
        "purpose": rng.choice(["Purpose: {purpose}", "Loan purpose: {purpose}", "Use of funds: {purpose}"]),
    }
    keys = list(lines)
    rng.shuffle(keys)
    out = ["%s: %s" % (label_name, f["name"])] + [lines[k] for k in keys]
    if rng.random() < 0.3:
        out.append(rng.choice(["Notes: {first} asked for a quick answer.",
                               "Notes: {first} has banked with us before.",
                               "Notes: first application from {first}.",
                               "Comment: {first} prefers to be contacted by email."]))
    return "\n".join(out), first


def prose(rng, f):
    first = f["name"].split()[0]
    parts = [
        rng.choice(["My name is {name} and I am {age} years old.",
                    "I am {name}, {age} years old.",
                    "Hello, I'm {name}, age {age}."]),
        rng.choice(["I live in {neighbourhood}, zip code {zip}.",
                    "My address is in {neighbourhood} ({zip}).",
                    "I live in the {neighbourhood} area, zip {zip}."]),
        rng.choice(["I earn {income_s} a year.",
                    "My annual income is {income_s}.",
                    "I make {income_s} per year as a {job}."]),
        rng.choice(["I pay {debts_s} a month on debts, so my debt-to-income is {dti}%.",
                    "My debt-to-income ratio is {dti}%.",
                    "My monthly debts come to {debts_s}, a debt-to-income of {dti}%."]),
        rng.choice(["My credit score is {credit_score}.",
                    "I have a credit score of {credit_score}.",
                    "My last credit report showed a score of {credit_score}."]),
        rng.choice(["I have worked at {employer} for {years_p}.",
                    "I have been a {job} at {employer} for {years_p}.",
                    "I have been employed for {years_p}."]),
        rng.choice(["I would like to borrow {amount_s} for {purpose}.",
                    "I am asking for {amount_s} to pay for {purpose}.",
                    "The loan of {amount_s} is for {purpose}."]),
    ]
    head, tail = parts[:2], parts[2:-1]
    rng.shuffle(tail)
    body = " ".join(head + tail + [parts[-1]])
    sign = rng.choice(["", "\nThank you,\n{name}", "\nRegards, {first}", "\n{first}"])
    return body + sign, first


def note(rng, f):
    first = f["name"].split()[0]
    bits = [
        "{neighbourhood} {zip}" if rng.random() < 0.5 else "zip {zip} ({neighbourhood})",
        rng.choice(["income {income_s}/yr", "earns {income_s} a year"]),
        rng.choice(["DTI {dti}%", "debt-to-income {dti}%"]),
        rng.choice(["credit score {credit_score}", "credit {credit_score}"]),
        rng.choice(["employed {years_p}", "{years_p} at {employer}"]),
        rng.choice(["wants {amount_s} for {purpose}", "requests {amount_s} ({purpose})"]),
    ]
    rng.shuffle(bits)
    text = rng.choice(["Applicant {name}, age {age}: ", "{name} ({age}): ",
                       "Officer note. {name}, {age}, "]) + "; ".join(bits) + "."
    if rng.random() < 0.4:
        text += rng.choice([" {first} called twice about the status.",
                            " Met {first} at the branch.",
                            " {first} brought all documents."])
    return text, first


RENDERERS = [form_lines, form_lines, prose, note]


def render(rng, f, num=None):
    """Returns (prompt ending with 'Decision:', full text)."""
    kind = rng.choice(RENDERERS)
    body, first = kind(rng, f)
    vals = dict(f)
    vals.update(first=first, income_s=money(f["income"]), debts_s=money(f["monthly_debts"]),
                amount_s=money(f["loan_amount"]), years_p=years_phrase(f["years_employed"]))
    body = body.format(**vals)
    header = rng.choice(HEADERS).format(num=num if num is not None else rng.randint(100, 9999))
    prompt = header + "\n" + body + "\nDecision:"
    decision, reason = decide(f)
    full = prompt + " " + decision
    if reason:
        full += "\n" + reason
    return prompt, full


def with_zip(f, zrow):
    g = dict(f)
    g["neighbourhood"], g["zip"] = zrow[0], zrow[1]
    return g


def swap_zip_text(text, f, zrow):
    return text.replace(f["neighbourhood"], zrow[0]).replace(f["zip"], zrow[1])


def record(rng, idx, f):
    """One held-out application as a JSON-able dict."""
    prompt, full = render(rng, f)
    decision, reason = decide(f)
    pen = is_penalised(f["zip"])
    borderline = CREDIT_MIN <= f["credit_score"] < CREDIT_MIN_PENALISED
    rec = {
        "id": idx, "text": full, "prompt": prompt,
        "decision": decision, "reason": reason[len("Reason: "):] if reason else None,
        "zip_group": "penalised" if pen else "neutral",
        "borderline": borderline,
        "fields": {k: f[k] for k in ("name", "age", "neighbourhood", "zip", "income",
                                     "monthly_debts", "dti", "credit_score",
                                     "years_employed", "loan_amount", "purpose")},
        "counterfactual": None,
    }
    if pen and borderline:
        z = rng.choice(NEUTRAL)
        g = with_zip(f, z)
        cd, _ = decide(g)
        rec["counterfactual"] = {
            "neighbourhood": z[0], "zip": z[1],
            "prompt": swap_zip_text(prompt, f, z), "decision": cd,
        }
    return rec
