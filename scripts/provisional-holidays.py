#!/usr/bin/env python3
"""Development-time generator of PROVISIONAL years for conf/holidays-cn.conf.

For years with no State Council notice yet (国务院办公厅关于YYYY年部分节假日
安排的通知) it prints, in the file's format, only the statutory days of
全体公民放假的节日 in Art. 2 of 《全国年节及纪念日放假办法》 as revised by
国务院令第795号 (2024-11-10, in force 2025-01-01):

    元旦   1 day   1月1日
    春节   4 days  农历除夕、正月初一至初三
    清明节 1 day   农历清明当日 (the solar term, Beijing time UTC+8)
    劳动节 2 days  5月1日、2日
    端午节 1 day   农历端午当日 (五月初五)
    中秋节 1 day   农历中秋当日 (八月十五)
    国庆节 3 days  10月1日至3日

No 调休 (worked weekends) and no 补假 (Art. 6: a holiday on a Saturday or
Sunday is made up on a working day): the State Council fixes both only in its
yearly notice, so a provisional year under-counts days off whenever a
statutory day falls on a weekend.  Replace each provisional year by the
official schedule when it is published.

The daemon does not use this script or its libraries; it only reads the file.

Run (Python 3.8+; the libraries go in a throw-away venv, never a project
dependency):

    python3 -m venv /tmp/provvenv
    /tmp/provvenv/bin/pip install lunar-python==1.4.8 lunardate==0.3.0 \\
        sxtwl==2.0.7 ephem==4.2.1
    /tmp/provvenv/bin/python scripts/provisional-holidays.py \\
        [--from 2027] [--to 2035] [--crosscheck FILE] [--working-days FILE] \\
        > section.conf

It computes every lunar date and 清明 with lunar-python (6tail; the primary
source) and checks each one against independent sources:

  * lunardate  (a precomputed month table): 除夕, 正月初一, 端午, 中秋
  * sxtwl      (寿星天文历 C++ astronomy):    除夕, 正月初一, 端午, 中秋, 清明
  * ephem      (PyEphem/libastro):
      - 清明: the instant the Sun's apparent geocentric ecliptic longitude
        (equinox and ecliptic of date) reaches 15 degrees, as a UTC+8 date;
      - lunar days: the new moon (UTC+8 date) that begins each lunar month
        must fall on day 1 of the month the libraries give, i.e. a date of
        lunar day d lies d-1 days after it; for 除夕 the next new moon falls on
        the following day.  (This checks day alignment; month numbering and
        leap months rest on the three calendar libraries.)

A disagreement prints every conflicting value on stderr, prints no section,
and exits 1.  An event within 30 minutes of Beijing midnight (new moon or
清明) is reported on stderr as a close call but is not an error by itself.
--crosscheck writes the table of every date per source; --working-days
writes "YYYY N" (Monday-Friday minus the listed holidays on Monday-Friday).
"""

import argparse
import datetime
import math
import sys

COMMENT_COLUMN = 34  # 1-based column of '#', as in conf/holidays-cn.conf
ARTICLE = 2          # the article of 全体公民放假的节日
BEIJING = datetime.timedelta(hours=8)
CLOSE_CALL = datetime.timedelta(minutes=30)

LUNAR_EVENTS = ("除夕", "正月初一", "端午", "中秋")
EVENTS = ("除夕", "正月初一", "清明", "端午", "中秋")


def day(year, month, dom):
    return datetime.date(year, month, dom)


# ---- source 1: lunar-python (primary)
def from_lunar_python(year, notes):
    from lunar_python import Lunar

    new_year = Lunar.fromYmd(year, 1, 1)
    eve = new_year.next(-1)
    if eve.getMonth() != 12 or eve.getDay() not in (29, 30):
        notes.append(f"lunar-python: {year} 除夕 is {eve.toString()}, not 腊月廿九/三十")
    qingming = new_year.getJieQiTable()["清明"]

    def solar(s):
        return day(s.getYear(), s.getMonth(), s.getDay())

    return {
        "除夕": solar(eve.getSolar()),
        "正月初一": solar(new_year.getSolar()),
        "清明": solar(qingming),
        "端午": solar(Lunar.fromYmd(year, 5, 5).getSolar()),
        "中秋": solar(Lunar.fromYmd(year, 8, 15).getSolar()),
    }, {"清明": qingming.toYmdHms(), "除夕": "腊月" + ("廿九" if eve.getDay() == 29 else "三十")}


# ---- source 2: lunardate (table)
def from_lunardate(year, notes):
    from lunardate import LunarDate

    new_year = LunarDate(year, 1, 1).to_solar_date()
    eve = new_year - datetime.timedelta(days=1)
    back = LunarDate.from_solar_date(eve.year, eve.month, eve.day)
    if (back.year, back.month, back.isLeapMonth) != (year - 1, 12, False) or back.day not in (29, 30):
        notes.append(f"lunardate: {year} 除夕 {eve} is lunar {back}, not 腊月廿九/三十")
    return {
        "除夕": eve,
        "正月初一": new_year,
        "端午": LunarDate(year, 5, 5, False).to_solar_date(),
        "中秋": LunarDate(year, 8, 15, False).to_solar_date(),
    }, {}


# ---- source 3: sxtwl (寿星天文历)
def from_sxtwl(year, notes):
    import sxtwl

    def solar(d):
        return day(d.getSolarYear(), d.getSolarMonth(), d.getSolarDay())

    new_year = solar(sxtwl.fromLunar(year, 1, 1))
    eve = new_year - datetime.timedelta(days=1)
    e = sxtwl.fromSolar(eve.year, eve.month, eve.day)
    if e.getLunarMonth() != 12 or e.isLunarLeap() or e.getLunarDay() not in (29, 30):
        notes.append(f"sxtwl: {year} 除夕 {eve} is lunar month {e.getLunarMonth()} "
                     f"day {e.getLunarDay()} leap={e.isLunarLeap()}")
    qingming = [info for info in sxtwl.getJieQiByYear(year) if info.jqIndex == 7]
    times = []
    for info in qingming:
        t = sxtwl.JD2DD(info.jd)  # Beijing time
        if int(t.Y) == year:
            times.append(t)
    if len(times) != 1:
        raise SystemExit(f"sxtwl: {len(times)} 清明 found in {year}")
    t = times[0]
    return {
        "除夕": eve,
        "正月初一": new_year,
        "清明": day(int(t.Y), int(t.M), int(t.D)),
        "端午": solar(sxtwl.fromLunar(year, 5, 5)),
        "中秋": solar(sxtwl.fromLunar(year, 8, 15)),
    }, {"清明": f"{int(t.Y):04d}-{int(t.M):02d}-{int(t.D):02d} "
               f"{int(t.h):02d}:{int(t.m):02d}:{int(t.s):02d}"}


# ---- source 4: ephem (astronomy)
def ephem_beijing(ephem_date):
    return ephem_date.datetime() + BEIJING  # naive, Beijing wall time


def close_to_midnight(moment):
    midnight = datetime.datetime.combine(moment.date(), datetime.time())
    return min(moment - midnight, midnight + datetime.timedelta(days=1) - moment) < CLOSE_CALL


def apparent_solar_longitude(ephem, when):
    sun = ephem.Sun()
    sun.compute(when)
    of_date = ephem.Equatorial(sun.g_ra, sun.g_dec, epoch=when)
    return float(ephem.Ecliptic(of_date, epoch=when).lon)


def qingming_ephem(year, warnings):
    import ephem

    target = math.radians(15.0)
    low, high = ephem.Date(f"{year}/4/2"), ephem.Date(f"{year}/4/8")
    if not apparent_solar_longitude(ephem, low) < target < apparent_solar_longitude(ephem, high):
        raise SystemExit(f"ephem: {year}: solar longitude 15 deg not bracketed by 4/2..4/8")
    for _ in range(50):  # 6 days / 2**50: far below a second
        middle = ephem.Date((low + high) / 2)
        if apparent_solar_longitude(ephem, middle) < target:
            low = middle
        else:
            high = middle
    moment = ephem_beijing(ephem.Date(high))
    if close_to_midnight(moment):
        warnings.append(f"close call: {year} 清明 at {moment:%Y-%m-%d %H:%M:%S} UTC+8 (ephem)")
    return moment


def new_moon_checks(year, dates, warnings):
    """Day-of-month alignment of each lunar date against ephem's new moons."""
    import ephem

    problems = []
    offsets = {"正月初一": 1, "端午": 5, "中秋": 15}
    details = {}
    for event, lunar_day in offsets.items():
        date = dates[event]
        end_of_day = datetime.datetime.combine(date, datetime.time()) + datetime.timedelta(days=1)
        moon = ephem_beijing(ephem.previous_new_moon(ephem.Date(end_of_day - BEIJING)))
        expected = date - datetime.timedelta(days=lunar_day - 1)
        details[event] = moon
        if close_to_midnight(moon):
            warnings.append(f"close call: new moon {moon:%Y-%m-%d %H:%M:%S} UTC+8 "
                            f"(month of {year} {event})")
        if moon.date() != expected:
            problems.append(f"ephem: {year} {event} {date} should follow the new moon of "
                            f"{expected}, but it fell on {moon:%Y-%m-%d %H:%M} UTC+8")
    eve = dates["除夕"]
    start = datetime.datetime.combine(eve, datetime.time())
    moon = ephem_beijing(ephem.next_new_moon(ephem.Date(start - BEIJING)))
    if moon.date() != eve + datetime.timedelta(days=1):
        problems.append(f"ephem: {year} 除夕 {eve}: the next new moon is "
                        f"{moon:%Y-%m-%d %H:%M} UTC+8, not the following day")
    return problems, details


def compute(year, warnings):
    notes = []
    primary, primary_times = from_lunar_python(year, notes)
    table, _ = from_lunardate(year, notes)
    astro, astro_times = from_sxtwl(year, notes)
    qm = qingming_ephem(year, warnings)
    sources = {
        "lunar-python": primary,
        "lunardate": table,
        "sxtwl": astro,
        "ephem": {"清明": qm.date()},
    }
    times = {
        "lunar-python": primary_times.get("清明"),
        "sxtwl": astro_times.get("清明"),
        "ephem": f"{qm:%Y-%m-%d %H:%M:%S}",
        "除夕": primary_times["除夕"],
    }
    problems = list(notes)
    for event in EVENTS:
        values = {name: got[event] for name, got in sources.items() if event in got}
        if len(set(values.values())) != 1:
            problems.append(f"{year} {event}: " + ", ".join(f"{n} {v}" for n, v in values.items()))
    moon_problems, moons = new_moon_checks(year, primary, warnings)
    problems += moon_problems
    return primary, sources, times, moons, problems


def holiday_line(first, last, comment):
    text = f"holiday {first.isoformat()}"
    if last != first:
        text += f"..{last.isoformat()}"
    return text.ljust(COMMENT_COLUMN - 1) + f"# {comment}"


def year_block(year, dates):
    one = datetime.timedelta(days=1)
    eve = dates["除夕"]
    entries = [
        (day(year, 1, 1), day(year, 1, 1), "元旦"),
        (eve, eve + 3 * one, "春节 (除夕 .. 正月初三)"),
        (dates["清明"], dates["清明"], "清明节"),
        (day(year, 5, 1), day(year, 5, 2), "劳动节"),
        (dates["端午"], dates["端午"], "端午节"),
        (dates["中秋"], dates["中秋"], "中秋节"),
        (day(year, 10, 1), day(year, 10, 3), "国庆节"),
    ]
    lines = [f"# {year} (provisional: the statutory days of 《全国年节及纪念日放假办法》 "
             f"Art. {ARTICLE} only; no 调休, no 补假)"]
    lines += [holiday_line(first, last, comment) for first, last, comment in entries]
    return lines, entries


def working_days(year, entries):
    off = set()
    for first, last, _ in entries:
        d = first
        while d <= last:
            off.add(d)
            d += datetime.timedelta(days=1)
    count = 0
    d = day(year, 1, 1)
    while d.year == year:
        if d.weekday() < 5 and d not in off:
            count += 1
        d += datetime.timedelta(days=1)
    return count


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--from", dest="first", type=int, default=2027)
    parser.add_argument("--to", dest="last", type=int, default=2035)
    parser.add_argument("--crosscheck", metavar="FILE", help="write the per-source table here")
    parser.add_argument("--working-days", metavar="FILE", help='write "YYYY N" lines here')
    args = parser.parse_args()
    if args.last < args.first:
        parser.error("--to is before --from")
    missing = []
    for module in ("lunar_python", "lunardate", "sxtwl", "ephem"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        print(f"missing {', '.join(missing)}: pip install lunar-python==1.4.8 lunardate==0.3.0 "
              "sxtwl==2.0.7 ephem==4.2.1 (into a venv; see the top of this script)",
              file=sys.stderr)
        return 2

    warnings, problems, blocks, table, counts = [], [], [], [], []
    source_names = ("lunar-python", "lunardate", "sxtwl", "ephem")
    table.append("# Cross-check of the provisional holiday dates (Gregorian, UTC+8).")
    table.append("# '-' = that source is not used for that item.  ephem checks 清明 by solar")
    table.append("# longitude 15 deg and the lunar days by the UTC+8 date of the new moon that")
    table.append("# opens each month (column 'new moon', the instant in UTC+8).")
    table.append(f"{'year':<5} {'item':<8} " + " ".join(f"{n:<12}" for n in source_names)
                 + " agree  new moon / 清明 instant (UTC+8)")
    for year in range(args.first, args.last + 1):
        dates, sources, times, moons, year_problems = compute(year, warnings)
        problems += year_problems
        for event in EVENTS:
            cells = [str(sources[n].get(event, "-")) for n in source_names]
            used = {c for c in cells if c != "-"}
            if event == "清明":
                extra = "; ".join(f"{n} {times[n]}" for n in ("lunar-python", "sxtwl", "ephem"))
            elif event == "除夕":
                extra = (f"{times['除夕']} (lunar-python); next day is 正月初一 "
                         f"({moons['正月初一']:%Y-%m-%d %H:%M} new moon)")
            else:
                extra = f"{moons[event]:%Y-%m-%d %H:%M}"
            label = event + "\u3000" * (4 - len(event))  # pad CJK to four full-width cells
            table.append(f"{year:<5} {label} " + " ".join(f"{c:<12}" for c in cells)
                         + f" {'yes' if len(used) == 1 else 'NO':<6} {extra}")
        lines, entries = year_block(year, dates)
        blocks.append("\n".join(lines))
        counts.append(f"{year} {working_days(year, entries)}")

    for warning in warnings:
        print(warning, file=sys.stderr)
    if args.crosscheck:
        with open(args.crosscheck, "w", encoding="utf-8") as out:
            out.write("\n".join(table) + "\n")
            out.write("\nresult: " + ("DISAGREEMENT\n" + "\n".join(problems) if problems
                                      else "all sources agree on every date") + "\n")
            if warnings:
                out.write("\n".join(warnings) + "\n")
    if problems:
        print("sources disagree; no section printed:", file=sys.stderr)
        for problem in problems:
            print("  " + problem, file=sys.stderr)
        return 1
    if args.working_days:
        with open(args.working_days, "w", encoding="utf-8") as out:
            out.write("\n".join(counts) + "\n")
    print("\n\n".join(blocks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
