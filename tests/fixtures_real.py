"""Small files shaped like the real exports of issue 17, and the documented commands that import them.

Each builder writes its file(s) into a folder and returns a :class:`Shape`: the exact
``python -m cxmetrics import …`` commands of the README's "Bring your own data" section (run from
that folder, with ``--db`` appended), and the facts a test can check the import against, computed
here from the rows written (never typed in by hand).

The features are those the issue lists for each shape:

* ``qualtrics``: a Qualtrics CSV export with three header rows (short names; question text spanning
  lines inside quotes; ``{"ImportId": …}`` JSON), ``Status`` / ``Finished`` / ``Progress`` /
  ``DistributionChannel``, previews (numeric codes), spam and unfinished rows, choice-text values
  (``0 - Not at all likely`` … ``10 - Extremely likely``, the 5-point satisfaction labels, a
  frequency question), ``RecordedDate`` as ``2023-05-04 10:11:12``, an empty ``ExternalReference``
  (anonymous) and a finished response with no answer at all.
* ``qualtrics_resaved``: the same export re-saved through Excel: one header row, US dates
  ``3/15/2022 12:34``, CRLF line ends.
* ``retailer``: an R ``write.csv`` survey: a ``""`` row-number column, ``NA``, French verbatims in
  Windows-1252 with a few lines in CP850 bytes, rows with no score, no date column, satisfaction on
  1–10 (recoded with ``--labels``), customer ids with no customers file (stub customers).
* ``line_items``: retail invoice lines (``InvoiceNo, StockCode, Description, Quantity, InvoiceDate,
  UnitPrice, CustomerID, Country``), ids as ``17850.0``, ``M/D/YYYY H:MM`` dates, lines without a
  customer, cancellations (``C…`` invoices with negative quantities).
* ``complaints``: a regulator-style complaints log: ``M/D/YYYY`` dates, ``Yes``/``No`` flags, no
  customer key.
* ``churn_xlsx``: a telco churn workbook: satisfaction 1–5, churn label and value, no NPS, no
  transactions, no dates.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import random
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Shape:
    name: str
    #: the documented commands, without ``--db`` (run from the folder holding the files)
    commands: list[str]
    #: facts about the rows written, for the test to compare with what the import reports
    facts: dict = field(default_factory=dict)


def _csv_text(rows: list[list], *, quoting=csv.QUOTE_MINIMAL, lineterminator: str = "\n") -> str:
    buf = io.StringIO()
    w = csv.writer(buf, quoting=quoting, lineterminator=lineterminator)
    w.writerows(rows)
    return buf.getvalue()


def nps_of(scores: list[int]) -> float:
    """100 × (share 9–10 − share 0–6): the definition, computed here for the checks."""
    n = len(scores)
    return 100 * (sum(s >= 9 for s in scores) - sum(s <= 6 for s in scores)) / n


# ----------------------------------------------------------------------------- Qualtrics

Q_FIELDS = ["StartDate", "EndDate", "Status", "IPAddress", "Progress", "Duration (in seconds)", "Finished",
            "RecordedDate", "ResponseId", "RecipientLastName", "RecipientFirstName", "RecipientEmail",
            "ExternalReference", "LocationLatitude", "LocationLongitude", "DistributionChannel", "UserLanguage",
            "Q1", "Q1_NPS_GROUP", "Q2", "Q3", "Q4"]
Q_TEXT = ["Start Date", "End Date", "Response Type", "IP Address", "Progress", "Duration (in seconds)", "Finished",
          "Recorded Date", "Response ID", "Recipient Last Name", "Recipient First Name", "Recipient Email",
          "External Data Reference", "Location Latitude", "Location Longitude", "Distribution Channel",
          "User Language",
          "How likely are you to recommend us to a friend or colleague?\n(0 = not at all likely, 10 = extremely likely)",
          "How likely are you to recommend us to a friend or colleague? - Group",
          "Overall, how satisfied or dissatisfied are you with our service?",
          "How often do you shop with us?",
          "What is the main reason for your score?\nPlease be as specific as you can."]
Q_IMPORT = ['{"ImportId":"startDate","timeZone":"America/Denver"}', '{"ImportId":"endDate","timeZone":"America/Denver"}',
            '{"ImportId":"status"}', '{"ImportId":"ipAddress"}', '{"ImportId":"progress"}', '{"ImportId":"duration"}',
            '{"ImportId":"finished"}', '{"ImportId":"recordedDate","timeZone":"America/Denver"}',
            '{"ImportId":"_recordId"}', '{"ImportId":"recipientLastName"}', '{"ImportId":"recipientFirstName"}',
            '{"ImportId":"recipientEmail"}', '{"ImportId":"externalDataReference"}', '{"ImportId":"locationLatitude"}',
            '{"ImportId":"locationLongitude"}', '{"ImportId":"distributionChannel"}', '{"ImportId":"userLanguage"}',
            '{"ImportId":"QID1"}', '{"ImportId":"QID1_NPS_GROUP"}', '{"ImportId":"QID2"}', '{"ImportId":"QID3"}',
            '{"ImportId":"QID4_TEXT"}']
SATISFACTION = ["Extremely dissatisfied", "Somewhat dissatisfied", "Neither satisfied nor dissatisfied",
                "Somewhat satisfied", "Extremely satisfied"]
FREQUENCY = ["Never", "Once a month", "Every week"]
REASONS = ["Friendly staff", "Delivery was late, twice", "Good prices", "Hard to reach anyone", "", "Great app"]


def _nps_label(score: int) -> str:
    return {0: "0 - Not at all likely", 10: "10 - Extremely likely"}.get(score, str(score))


def _group(score: int) -> str:
    return "Promoter" if score >= 9 else "Passive" if score >= 7 else "Detractor"


def _qualtrics_rows(seed: int, n: int, us_dates: bool) -> tuple[list[list[str]], dict]:
    """Data rows of a Qualtrics export and the facts: scores of the rows that must be imported."""
    rng = random.Random(seed)
    rows, kept_nps, kept_csat = [], [], []
    start = dt.datetime(2022, 3, 1, 9, 0, 0) if us_dates else dt.datetime(2023, 5, 1, 8, 0, 0)

    def stamp(t: dt.datetime) -> str:
        return f"{t.month}/{t.day}/{t.year} {t.hour}:{t.minute:02d}" if us_dates else t.strftime("%Y-%m-%d %H:%M:%S")

    def row(i, status, finished, progress, channel, q1, q2, q3, q4, code=False):
        t = start + dt.timedelta(days=i % 28, hours=i % 7, minutes=3 * i)
        nps = "" if q1 is None else (str(q1) if code else _nps_label(q1))
        sat = "" if q2 is None else (str(q2) if code else SATISFACTION[q2 - 1])
        return [stamp(t - dt.timedelta(minutes=4)), stamp(t), status, "" if channel == "preview" else f"203.0.113.{i % 250}",
                str(progress), str(200 + i), finished, stamp(t), f"R_{seed}{i:04d}xYz", "", "", "", "",
                "39.7392", "-104.9847", channel, "EN", nps, "" if q1 is None else _group(q1), sat,
                rng.choice(FREQUENCY), q4]

    for i in range(n):
        q1, q2 = rng.randint(0, 10), rng.randint(1, 5)
        rows.append(row(i, "IP Address", "True", 100, "anonymous", q1, q2, "", rng.choice(REASONS)))
        kept_nps.append(q1)
        kept_csat.append(q2)
    # previews hold numeric codes; spam; unfinished; a finished response with no answer at all
    rows.append(row(n, "Survey Preview", "True", 100, "preview", 9, 4, "", "test", code=True))
    rows.append(row(n + 1, "Survey Preview", "True", 100, "preview", 3, 2, "", "", code=True))
    rows.append(row(n + 2, "Spam", "True", 100, "anonymous", 10, 5, "", "buy now"))
    rows.append(row(n + 3, "IP Address", "False", 40, "anonymous", 2, None, "", ""))
    rows.append(row(n + 4, "IP Address", "False", 15, "anonymous", None, None, "", ""))
    rows.append(row(n + 5, "IP Address", "True", 100, "anonymous", None, None, "", ""))
    facts = {"rows": n, "previews": 2, "spam": 1, "unfinished": 2, "no_answer": 1, "nps": kept_nps,
             "csat": kept_csat, "anonymous": n}
    return rows, facts


def qualtrics(folder: Path, seed: int = 17, n: int = 40) -> Shape:
    """A Qualtrics CSV export as downloaded (three header rows, choice text, anonymous)."""
    rows, facts = _qualtrics_rows(seed, n, us_dates=False)
    text = _csv_text([Q_FIELDS, Q_TEXT, Q_IMPORT, *rows], quoting=csv.QUOTE_ALL)
    (folder / "qualtrics_export.csv").write_text(text, encoding="utf-8-sig")
    cmd = 'python -m cxmetrics import survey_responses qualtrics_export.csv --map "Q2=csat" --map "Q4=verbatim"'
    return Shape("qualtrics", [cmd], facts)


def qualtrics_resaved(folder: Path, seed: int = 23, n: int = 36) -> Shape:
    """The export opened in Excel and saved again as CSV: one header row, US dates, CRLF."""
    rows, facts = _qualtrics_rows(seed, n, us_dates=True)
    text = _csv_text([Q_FIELDS, *rows], lineterminator="\r\n")
    (folder / "qualtrics_resaved.csv").write_text(text, encoding="utf-8")
    cmd = 'python -m cxmetrics import survey_responses qualtrics_resaved.csv --map "Q2=csat" --map "Q4=verbatim"'
    return Shape("qualtrics_resaved", [cmd], facts)


# ----------------------------------------------------------------------------- retailer survey (R)

FRENCH = ["Très bien, merci", "Personnel aimable et compétent", "Délai de livraison trop long",
          "Prix élevés mais qualité", "Je reviendrai sûrement", "Caissière très agréable"]
#: written in CP850 bytes (as a DOS tool would): é è ç à ê all decode, differently, under cp1252
FRENCH_850 = ["Déçu du service après-vente", "Très déçu, à éviter"]


def retailer(folder: Path, seed: int = 5, n: int = 45) -> Shape:
    """An R ``write.csv`` NPS survey of a retailer (cp1252 with cp850 lines, NA, no date column)."""
    rng = random.Random(seed)
    out = io.BytesIO()
    out.write(b'"","client_id","nps","satisfaction","comment"\r\n')
    nps, csat, no_score, clients, texts_1252 = [], [], 0, set(), []
    recode = {s: (s + 1) // 2 for s in range(1, 11)}  # 1–10 → 1–5, as the labels file says
    for i in range(1, n + 1):
        client = str(1000 + rng.randint(1, 30))
        if i % 15 == 0:  # no score and no comment: skipped and counted
            out.write(f'"{i}","{client}",NA,NA,NA\r\n'.encode("cp1252"))
            no_score += 1
            continue
        s, sat = rng.randint(0, 10), rng.randint(1, 10)
        nps.append(s)
        csat.append(recode[sat])
        clients.add(client)
        if i % 11 == 0:
            out.write(f'"{i}","{client}",{s},{sat},"{FRENCH_850[i % 2]}"\r\n'.encode("cp850"))
        elif i % 4 == 0:
            out.write(f'"{i}","{client}",{s},{sat},NA\r\n'.encode("cp1252"))
        else:
            t = FRENCH[i % len(FRENCH)]
            texts_1252.append(t)
            out.write(f'"{i}","{client}",{s},{sat},"{t}"\r\n'.encode("cp1252"))
    (folder / "retailer_nps.csv").write_bytes(out.getvalue())
    labels = "column,label,value\n" + "".join(f"satisfaction,{k},{v}\n" for k, v in recode.items())
    (folder / "satisfaction_labels.csv").write_text(labels, encoding="utf-8")
    cmd = ('python -m cxmetrics import survey_responses retailer_nps.csv --encoding cp1252 '
           '--map "client_id=customer_id" --map "satisfaction=csat" --map "comment=verbatim" '
           '--labels satisfaction_labels.csv --set survey=relationship --set responded_on=2019-06-30')
    return Shape("retailer", [cmd], {"rows": len(nps), "no_answer": no_score, "nps": nps, "csat": csat,
                                     "stubs": len(clients), "texts_1252": texts_1252})


# ----------------------------------------------------------------------------- line items


def line_items(folder: Path, seed: int = 11, invoices: int = 480) -> Shape:
    """Retail invoice lines: Quantity × UnitPrice, float-formatted ids, lines without a customer."""
    rng = random.Random(seed)
    header = ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    rows = []
    customers = [17850 + 13 * k for k in range(70)]
    start = dt.datetime(2010, 12, 1, 8, 26)
    totals: dict[str, float] = {}
    no_customer = 0
    cancelled = 0
    for k in range(invoices):
        inv = str(536365 + k)
        when = start + dt.timedelta(days=int(k * 365 / invoices), hours=k % 9, minutes=k % 50)
        cust = None if k % 5 == 4 else rng.choice(customers)
        cancel = cust is not None and k % 23 == 7
        if cancel:
            inv = "C" + inv
            cancelled += 1
        total = 0.0
        for _ in range(rng.randint(1, 4)):
            qty = rng.randint(1, 12) * (-1 if cancel else 1)
            price = rng.choice([0.85, 1.25, 2.55, 3.39, 4.95, 7.65])
            total += qty * price
            rows.append([inv, f"{rng.randint(20000, 99999)}", rng.choice(["WHITE HANGING HEART T-LIGHT HOLDER",
                                                                          "SET 7 BABUSHKA NESTING BOXES",
                                                                          "HAND WARMER, RED POLKA DOT"]),
                         str(qty), f"{when.month}/{when.day}/{when.year} {when.hour}:{when.minute:02d}", str(price),
                         "" if cust is None else f"{cust}.0", "United Kingdom"])
            if cust is None:
                no_customer += 1
        if cust is not None:
            totals[inv] = round(total, 2)
    (folder / "online_retail.csv").write_text(_csv_text([header, *rows]), encoding="utf-8")
    cmd = ('python -m cxmetrics import transactions online_retail.csv --line-items --amount "Quantity*UnitPrice" '
           '--map "InvoiceNo=transaction_id" --map "CustomerID=customer_id" --map "InvoiceDate=occurred_on"')
    used = {r[6] for r in rows if r[6]}
    return Shape("line_items", [cmd], {"lines": len(rows), "transactions": len(totals), "no_customer": no_customer,
                                       "negative": cancelled, "revenue": round(sum(totals.values()), 2),
                                       "stubs": len(used), "sample_id": str(customers[0])})


# ----------------------------------------------------------------------------- complaints log


def complaints(folder: Path, seed: int = 3, n: int = 60) -> Shape:
    """A regulator's complaints log: M/D/YYYY dates, Yes/No flags, no customer key."""
    rng = random.Random(seed)
    header = ["Date received", "Product", "Issue", "Company response to consumer", "Timely response?",
              "Consumer disputed?", "Submitted via", "Complaint ID"]
    rows, escalated = [], 0
    for i in range(n):
        d = dt.date(2022, 1, 3) + dt.timedelta(days=5 * i)
        disputed = "Yes" if i % 7 == 0 else "No"
        escalated += disputed == "Yes"
        rows.append([f"{d.month}/{d.day}/{d.year}", rng.choice(["Credit card", "Mortgage", "Checking account"]),
                     rng.choice(["Billing dispute", "Late fee", "Closing account"]), "Closed with explanation",
                     rng.choice(["Yes", "No"]), disputed, rng.choice(["Web", "Phone", "Referral"]), str(4_100_000 + i)])
    (folder / "complaints_log.csv").write_text(_csv_text([header, *rows]), encoding="utf-8")
    cmd = ('python -m cxmetrics import complaints complaints_log.csv --map "Complaint ID=complaint_id" '
           '--map "Date received=opened_on" --map "Product=category" --map "Submitted via=channel" '
           '--map "Consumer disputed?=escalated"')
    return Shape("complaints", [cmd], {"rows": n, "escalated": escalated})


# ----------------------------------------------------------------------------- churn workbook


def churn_xlsx(folder: Path, seed: int = 9, n: int = 80) -> Shape:
    """A telco churn workbook: one row per customer, satisfaction 1–5, churn flags, no dates."""
    from openpyxl import Workbook

    rng = random.Random(seed)
    wb = Workbook()
    ws = wb.active
    ws.title = "Telco_Churn"
    ws.append(["CustomerID", "Count", "Country", "State", "City", "Gender", "Senior Citizen", "Tenure Months",
               "Contract", "Monthly Charges", "Churn Label", "Churn Value", "Churn Reason", "Satisfaction Score"])
    churned, sats = 0, []
    for i in range(n):
        sat = rng.randint(1, 5)
        churn = rng.random() < (0.55 if sat <= 2 else 0.12)
        churned += churn
        sats.append(sat)
        ws.append([f"{1000 + i}-{''.join(rng.choice('ABCDEFGHJKLMNPQRSTUVWXYZ') for _ in range(5))}", 1,
                   "United States", "California", rng.choice(["Los Angeles", "San Diego", "Fresno"]),
                   rng.choice(["Male", "Female"]), rng.choice(["Yes", "No"]), rng.randint(1, 72),
                   rng.choice(["Month-to-month", "One year", "Two year"]), round(rng.uniform(20, 110), 2),
                   "Yes" if churn else "No", 1 if churn else 0,
                   rng.choice(["Competitor offered more data", "Attitude of support person", "Moved"]) if churn else None,
                   sat])
    wb.save(folder / "telco_churn.xlsx")
    cmds = [
        'python -m cxmetrics import customers telco_churn.xlsx --map "CustomerID=customer_id" --map "Contract=segment" '
        '--map "State=region" --set acquired_on=2020-01-01 --set contract=contractual',
        'python -m cxmetrics import churn_events telco_churn.xlsx --only "Churn Label=Yes" --map "CustomerID=customer_id" '
        '--map "Churn Reason=reason" --set churned_on=2024-06-30',
        'python -m cxmetrics import survey_responses telco_churn.xlsx --map "CustomerID=customer_id" '
        '--map "Satisfaction Score=csat" --set survey=relationship --set responded_on=2024-01-31',
    ]
    return Shape("churn_xlsx", cmds, {"customers": n, "churned": churned, "csat": sats})


BUILDERS = {"qualtrics": qualtrics, "qualtrics_resaved": qualtrics_resaved, "retailer": retailer,
            "line_items": line_items, "complaints": complaints, "churn_xlsx": churn_xlsx}


def build_all(folder: Path) -> dict[str, Shape]:
    """Every shape's files in ``folder`` (one sub-folder each)."""
    out = {}
    for name, fn in BUILDERS.items():
        sub = folder / name
        sub.mkdir(parents=True, exist_ok=True)
        out[name] = fn(sub)
    return out


if __name__ == "__main__":  # print the commands, e.g. to paste into the README
    import sys
    import tempfile

    shapes = build_all(Path(tempfile.mkdtemp()))
    json.dump({k: v.commands for k, v in shapes.items()}, sys.stdout, indent=2)
