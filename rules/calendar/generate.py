#!/usr/bin/env python3
"""Generate the per-year working-day calendar files (rules/calendar/YYYY.toml).

Usage (from the repository root):
    python3 rules/calendar/generate.py tests/fixtures/cn-holidays.json rules/calendar 2019 2026

Input: the JSON reference with `days_off` (date -> holiday name) and
`adjusted_workdays` (date -> holiday name; weekend days made working days, 调休).
Output: one TOML file per year in [FIRST, LAST], each holiday block as a
[[holiday]] table. A block is the set of dates with one holiday name that lie
close together (days off and their adjusted workdays); a block that straddles
a new year (e.g. New Year's Day 2024 starts on 2023-12-30) is split: each date
goes into the file of the year it falls in, and both files say so in a comment.

The files are meant to be edited by hand when a State Council notice changes;
re-running this script overwrites them. Stdlib only.
"""

import datetime as dt
import json
import os
import sys

NAME_ZH = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "Mid-autumn Festival": "中秋节",
    "National Day": "国庆节",
    "Anti-Fascist 70th Day": "中国人民抗日战争暨世界反法西斯战争胜利70周年纪念日",
}

# Notes for years whose arrangement was changed after the annual notice.
YEAR_NOTES = {
    2020: [
        "The Spring Festival holiday was extended to 2020-02-02 by the State Council General",
        "Office notice 关于延长2020年春节假期的通知 (January 2020); the originally adjusted",
        "workday 2020-02-01 (Saturday) was cancelled. The dates below include the extension.",
    ],
}

# Dates of the same holiday name more than this many days apart are separate blocks.
BLOCK_GAP_DAYS = 30


def fail(msg):
    print(f"generate.py: error: {msg}", file=sys.stderr)
    sys.exit(1)


def parse_date(s, what):
    try:
        d = dt.date.fromisoformat(s)
    except ValueError:
        fail(f"{what}: bad date {s!r}")
    if d.isoformat() != s:
        fail(f"{what}: date {s!r} is not in YYYY-MM-DD form")
    return d


def load(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    for key in ("days_off", "adjusted_workdays"):
        if not isinstance(data.get(key), dict):
            fail(f"{path}: missing object {key!r}")
    off = {parse_date(k, f"{path} days_off"): v for k, v in data["days_off"].items()}
    work = {parse_date(k, f"{path} adjusted_workdays"): v for k, v in data["adjusted_workdays"].items()}
    for d in sorted(set(off) & set(work)):
        fail(f"{path}: {d} is both a day off and an adjusted workday")
    for d, name in sorted(work.items()):
        if d.weekday() < 5:
            fail(f"{path}: adjusted workday {d} ({name}) is a {d.strftime('%A')}, not a Saturday/Sunday")
    for d, name in list(off.items()) + list(work.items()):
        if not isinstance(name, str) or not name.strip():
            fail(f"{path}: {d} has no holiday name")
    return off, work


def blocks(off, work):
    """Group dates into blocks: same holiday name, consecutive dates at most BLOCK_GAP_DAYS apart."""
    by_name = {}
    for d, name in off.items():
        by_name.setdefault(name, []).append((d, "off"))
    for d, name in work.items():
        by_name.setdefault(name, []).append((d, "work"))
    out = []
    for name, dates in by_name.items():
        dates.sort()
        cur = [dates[0]]
        for item in dates[1:]:
            if (item[0] - cur[-1][0]).days > BLOCK_GAP_DAYS:
                out.append((name, cur))
                cur = [item]
            else:
                cur.append(item)
        out.append((name, cur))
    out.sort(key=lambda b: b[1][0][0])
    return out


def toml_str(s):
    return json.dumps(s, ensure_ascii=False)  # a JSON string is a valid TOML basic string


def date_list(ds):
    return "[" + ", ".join(f'"{d.isoformat()}"' for d in ds) + "]"


def render(year, year_blocks, source_rel, about, generated_years):
    lines = [
        f"# {year} working-day calendar: State Council General Office notice on {year} holidays",
        f"# (国务院办公厅关于{year}年部分节假日安排的通知).",
        f"# Generated from {source_rel} by generate.py; edit by hand when a notice changes.",
        "#",
        "# A working day is a Monday-Friday not listed in days_off, or a date listed in",
        "# adjusted_workdays (a Saturday/Sunday made a working day, 调休). Every date in this",
        f"# file must lie in {year}. Days off may include the weekend days of a block.",
    ]
    for note in YEAR_NOTES.get(year, []):
        lines.append("# " + note)
    lines += [
        "",
        f"year = {year}",
        "source = "
        + toml_str(
            f"国务院办公厅关于{year}年部分节假日安排的通知 (State Council General Office notice on {year} holidays), "
            f"via {source_rel}"
            + (f" ({about})" if about else "")
        ),
    ]
    for name, items, other_years in year_blocks:
        off = [d for d, kind in items if kind == "off"]
        work = [d for d, kind in items if kind == "work"]
        lines.append("")
        for oy, oitems in sorted(other_years.items()):
            parts = [f"{d.isoformat()} ({'day off' if k == 'off' else 'adjusted workday'})" for d, k in oitems]
            where = f"{oy}.toml" if oy in generated_years else f"{oy}.toml is not generated"
            lines.append(f"# This {name} block also has dates in {oy} ({where}): " + ", ".join(parts) + ".")
        lines.append("[[holiday]]")
        lines.append(f"name = {toml_str(name)}")
        if name in NAME_ZH:
            lines.append(f"name_zh = {toml_str(NAME_ZH[name])}")
        lines.append(f"days_off = {date_list(off)}")
        lines.append(f"adjusted_workdays = {date_list(work)}")
    return "\n".join(lines) + "\n"


def main(argv):
    if len(argv) != 5:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        print("usage: generate.py JSON OUTDIR FIRST_YEAR LAST_YEAR", file=sys.stderr)
        return 2
    json_path, outdir = argv[1], argv[2]
    try:
        first, last = int(argv[3]), int(argv[4])
    except ValueError:
        fail("FIRST_YEAR and LAST_YEAR must be integers")
    if first > last:
        fail("FIRST_YEAR is after LAST_YEAR")
    off, work = load(json_path)
    with open(json_path, encoding="utf-8") as f:
        about_text = json.load(f).get("about", "")
    about = ""
    if "chinesecalendar" in about_text:
        about = "compiled from the PyPI package chinesecalendar 1.11.0"
    source_rel = os.path.relpath(json_path).replace(os.sep, "/")

    per_year = {y: [] for y in range(first, last + 1)}
    for name, items in blocks(off, work):
        years = sorted({d.year for d, _ in items})
        for y in years:
            if y not in per_year:
                continue
            mine = [(d, k) for d, k in items if d.year == y]
            others = {oy: [(d, k) for d, k in items if d.year == oy] for oy in years if oy != y}
            per_year[y].append((name, mine, others))

    for y, ybs in per_year.items():
        if not ybs:
            fail(f"no holiday data for {y} in {json_path}")
        for name, items, _ in ybs:
            for d, _k in items:
                if d.year != y:
                    fail(f"internal error: {d} placed in {y}.toml")
        text = render(y, ybs, source_rel, about, per_year)
        path = os.path.join(outdir, f"{y}.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        n_off = sum(1 for _, items, _ in ybs for _d, k in items if k == "off")
        n_work = sum(1 for _, items, _ in ybs for _d, k in items if k == "work")
        print(f"wrote {path}: {len(ybs)} holiday blocks, {n_off} days off, {n_work} adjusted workdays")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
