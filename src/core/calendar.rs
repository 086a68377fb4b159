//! Chinese working-day calendar (工作日): which dates are working days under the State Council
//! holiday notices, and the deadline arithmetic built on it ("N working days after D").
//!
//! Pure: this module parses calendar text it is given and does no IO. The caller reads the
//! files (`rules/calendar/YYYY.toml`, one per year) or uses the copies built into the binary
//! ([`BUILTIN_YEARS`], [`Calendar::builtin`]).
//!
//! A working day is a Monday-Friday that is not a statutory day off, or a Saturday/Sunday that
//! the State Council made a working day (调休, an "adjusted workday"). Dates are plain local
//! dates in Asia/Shanghai. A date in a year that has no calendar file is classified by the plain
//! Monday-Friday rule, but never silently: every result that depended on such a date is marked
//! provisional ([`Checked::provisional`], [`Day::provisional`]).
//!
//! File format (TOML; dates as `"YYYY-MM-DD"` strings or bare TOML local dates):
//!
//! ```toml
//! year = 2025
//! source = "国务院办公厅关于2025年部分节假日安排的通知 ..."   # optional
//!
//! [[holiday]]
//! name = "National Day"
//! name_zh = "国庆节"                                  # optional
//! days_off = ["2025-10-01", "2025-10-02"]             # may include weekend days of the block
//! adjusted_workdays = ["2025-09-28", "2025-10-11"]    # Saturdays/Sundays made working days
//! ```
//!
//! Every date in a file must lie in the file's `year`; a holiday block that straddles New Year
//! is split between the two files. A file must list `YYYY-01-01` as a day off (元旦 is always
//! a statutory holiday), which stops an empty placeholder file from passing as real data.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The calendar files shipped with the source, embedded so that a binary works without the
/// `rules/calendar` directory: `(origin, contents)`, ready for [`Calendar::parse_years`].
pub const BUILTIN_YEARS: &[(&str, &str)] = &[
    (
        "rules/calendar/2019.toml",
        include_str!("../../rules/calendar/2019.toml"),
    ),
    (
        "rules/calendar/2020.toml",
        include_str!("../../rules/calendar/2020.toml"),
    ),
    (
        "rules/calendar/2021.toml",
        include_str!("../../rules/calendar/2021.toml"),
    ),
    (
        "rules/calendar/2022.toml",
        include_str!("../../rules/calendar/2022.toml"),
    ),
    (
        "rules/calendar/2023.toml",
        include_str!("../../rules/calendar/2023.toml"),
    ),
    (
        "rules/calendar/2024.toml",
        include_str!("../../rules/calendar/2024.toml"),
    ),
    (
        "rules/calendar/2025.toml",
        include_str!("../../rules/calendar/2025.toml"),
    ),
    (
        "rules/calendar/2026.toml",
        include_str!("../../rules/calendar/2026.toml"),
    ),
];

/// Smallest `year` a calendar file may declare.
pub const MIN_YEAR: i32 = 1949;
/// Largest `year` a calendar file may declare.
pub const MAX_YEAR: i32 = 9999;

/// Where in which file a problem is: the origin given to [`Calendar::parse_years`] (usually the
/// path) and, when known, the 1-based line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub origin: String,
    pub line: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}", self.origin, line),
            None => f.write_str(&self.origin),
        }
    }
}

/// A calendar file that cannot be used. Every variant names the file (and line, when known).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    /// Not TOML, or a field missing, unknown (e.g. a typo) or of the wrong type.
    #[error("{at}: not a valid calendar file: {message}")]
    Syntax { at: Location, message: String },
    /// `year` outside [`MIN_YEAR`]..=[`MAX_YEAR`].
    #[error(
        "{at}: year = {year} is not a plausible calendar year (expected {MIN_YEAR}..={MAX_YEAR})"
    )]
    BadYear { at: Location, year: i64 },
    /// A list entry that is not a date.
    #[error("{at}: holiday {holiday:?}: {list}: {value} is not a date (expected \"YYYY-MM-DD\")")]
    BadDate {
        at: Location,
        holiday: String,
        list: &'static str,
        value: String,
    },
    /// A date outside the year the file declares.
    #[error(
        "{at}: holiday {holiday:?}: {list}: {date} is not in {year}; every date in the {year} file must lie in {year} (put it in the file of its own year)"
    )]
    DateOutsideYear {
        at: Location,
        holiday: String,
        list: &'static str,
        date: NaiveDate,
        year: i32,
    },
    /// An adjusted workday on a Monday-Friday (a weekday is a working day anyway, so this is a
    /// typo in the date).
    #[error(
        "{at}: holiday {holiday:?}: adjusted workday {date} is a {}; an adjusted workday (调休) must be a Saturday or Sunday",
        weekday_name(*.weekday)
    )]
    AdjustedWorkdayNotWeekend {
        at: Location,
        holiday: String,
        date: NaiveDate,
        weekday: Weekday,
    },
    /// The same date listed as a day off and as an adjusted workday.
    #[error(
        "{at}: {date} is both a day off (holiday {off_holiday:?}) and an adjusted workday (holiday {workday_holiday:?})"
    )]
    OffAndWorkday {
        at: Location,
        date: NaiveDate,
        off_holiday: String,
        workday_holiday: String,
    },
    /// The same date listed twice in the same kind of list (in one holiday or in two).
    #[error(
        "{at}: {date} is listed twice in {list} (holiday {first_holiday:?}, then holiday {second_holiday:?})"
    )]
    DuplicateDate {
        at: Location,
        date: NaiveDate,
        list: &'static str,
        first_holiday: String,
        second_holiday: String,
    },
    /// A `[[holiday]]` whose name is empty.
    #[error("{at}: a holiday has an empty name")]
    EmptyName { at: Location },
    /// A `[[holiday]]` with neither days off nor adjusted workdays.
    #[error("{at}: holiday {holiday:?} lists no dates (neither days_off nor adjusted_workdays)")]
    EmptyHoliday { at: Location, holiday: String },
    /// The file does not list 1 January as a day off: an incomplete or placeholder file.
    #[error(
        "{at}: {year}-01-01 (New Year's Day, 元旦) is not listed as a day off; a year's file must list all of that year's statutory days off"
    )]
    MissingNewYear { at: Location, year: i32 },
    /// Two files for the same year.
    #[error("{at}: year {year} is already defined by {first_origin}")]
    DuplicateYear {
        at: Location,
        year: i32,
        first_origin: String,
    },
}

/// Whether a date is a working day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DayKind {
    Workday,
    DayOff,
}

/// What the calendar says about one date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Day {
    pub date: NaiveDate,
    pub kind: DayKind,
    /// The holiday block the date belongs to: for a statutory day off, its holiday; for an
    /// adjusted workday, the holiday it was swapped for. `None` for an ordinary weekday or weekend.
    pub holiday: Option<String>,
    /// Chinese name of `holiday`, when the file gives one (e.g. "国庆节").
    pub holiday_zh: Option<String>,
    /// The date's year has no calendar data: `kind` comes from the plain Monday-Friday rule.
    pub provisional: bool,
}

impl Day {
    /// A Saturday/Sunday made a working day (调休).
    pub fn is_adjusted_workday(&self) -> bool {
        self.kind == DayKind::Workday && self.holiday.is_some()
    }

    /// A statutory day off (as opposed to an ordinary weekend or a working day).
    pub fn is_holiday(&self) -> bool {
        self.kind == DayKind::DayOff && self.holiday.is_some()
    }
}

/// A result plus whether any day it depended on lies in a year with no calendar data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Checked<T> {
    pub value: T,
    /// Some day the result depended on lies in a year that is not loaded; that day was
    /// classified by the plain Monday-Friday rule, so the result may be wrong.
    pub provisional: bool,
}

impl<T> Checked<T> {
    /// Transform the value, keeping the provisional flag.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Checked<U> {
        Checked {
            value: f(self.value),
            provisional: self.provisional,
        }
    }
}

/// A count of working days, validated once: `0..=`[`WorkingDays::MAX`].
///
/// 0 is allowed and means "the same date": `add_workdays(d, 0) == d` (even when `d` is not a
/// working day) and `workdays_before(due, 0)` is the last working day on or before `due`. A
/// rule that needs a positive deadline should check [`WorkingDays::is_zero`] itself.
/// Deserializes from an integer (`deadline = 10`), with the same checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "u32")]
pub struct WorkingDays(u32);

/// A working-day count that is negative or larger than [`WorkingDays::MAX`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WorkingDaysError {
    #[error("a number of working days cannot be negative (got {0})")]
    Negative(i64),
    #[error("{0} working days is more than the maximum of {max} (about ten years)", max = WorkingDays::MAX)]
    TooLarge(i64),
}

impl WorkingDays {
    /// Largest accepted count (about ten years of working days plus margin).
    pub const MAX: u32 = 3650;

    pub fn new(n: u32) -> Result<WorkingDays, WorkingDaysError> {
        if n > Self::MAX {
            Err(WorkingDaysError::TooLarge(i64::from(n)))
        } else {
            Ok(WorkingDays(n))
        }
    }

    pub const fn get(self) -> u32 {
        self.0
    }

    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl TryFrom<u32> for WorkingDays {
    type Error = WorkingDaysError;
    fn try_from(n: u32) -> Result<Self, Self::Error> {
        WorkingDays::new(n)
    }
}

impl TryFrom<i64> for WorkingDays {
    type Error = WorkingDaysError;
    fn try_from(n: i64) -> Result<Self, Self::Error> {
        if n < 0 {
            return Err(WorkingDaysError::Negative(n));
        }
        match u32::try_from(n) {
            Ok(n) => WorkingDays::new(n),
            Err(_) => Err(WorkingDaysError::TooLarge(n)),
        }
    }
}

impl From<WorkingDays> for u32 {
    fn from(n: WorkingDays) -> u32 {
        n.0
    }
}

impl fmt::Display for WorkingDays {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// The working-day calendar: the loaded years and their holiday data.
#[derive(Debug, Clone)]
pub struct Calendar {
    years: BTreeMap<i32, YearData>,
}

#[derive(Debug, Clone)]
struct YearData {
    origin: String,
    /// Line of `year =`, for the duplicate-year message.
    year_line: usize,
    source: Option<String>,
    holidays: Vec<HolidayInfo>,
    /// Days that differ from, or annotate, the weekday rule: days off and adjusted workdays.
    special: HashMap<NaiveDate, Special>,
}

#[derive(Debug, Clone)]
struct HolidayInfo {
    name: String,
    name_zh: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Special {
    off: bool,
    /// Index into `YearData::holidays`.
    holiday: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct YearFile {
    year: Spanned<i64>,
    #[serde(default)]
    source: Option<String>,
    #[serde(default, rename = "holiday")]
    holidays: Vec<HolidayFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HolidayFile {
    name: Spanned<String>,
    #[serde(default)]
    name_zh: Option<String>,
    #[serde(default)]
    days_off: Vec<Spanned<toml::Value>>,
    #[serde(default)]
    adjusted_workdays: Vec<Spanned<toml::Value>>,
}

const DAYS_OFF: &str = "days_off";
const ADJUSTED_WORKDAYS: &str = "adjusted_workdays";

impl Calendar {
    /// A calendar with no years: every answer is provisional (plain Monday-Friday rule).
    pub fn empty() -> Calendar {
        Calendar {
            years: BTreeMap::new(),
        }
    }

    /// Parse calendar files. `files`: (origin used in error messages, e.g. the path; file
    /// contents). Each file declares its own `year`; two files for one year are an error.
    pub fn parse_years<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Calendar, CalendarError> {
        let mut years = BTreeMap::new();
        for (origin, text) in files {
            let (year, data) = parse_year_file(origin, text)?;
            insert_year(&mut years, year, data)?;
        }
        Ok(Calendar { years })
    }

    /// The calendar built into the binary ([`BUILTIN_YEARS`]).
    pub fn builtin() -> Result<Calendar, CalendarError> {
        Calendar::parse_years(BUILTIN_YEARS.iter().copied())
    }

    /// The built-in calendar with `files` laid over it: a file for a year that is built in
    /// replaces that year; a file for another year adds it. Two of `files` for one year are
    /// still an error.
    pub fn builtin_overlaid<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Calendar, CalendarError> {
        let mut cal = Calendar::parse_years(files)?;
        for (year, data) in Calendar::builtin()?.years {
            cal.years.entry(year).or_insert(data);
        }
        Ok(cal)
    }

    /// Loaded years, ascending.
    pub fn years(&self) -> Vec<i32> {
        self.years.keys().copied().collect()
    }

    /// Whether `year` has calendar data.
    pub fn covers(&self, year: i32) -> bool {
        self.years.contains_key(&year)
    }

    /// Years of `[year, year + 1]` that are not loaded (for the start-up and status warnings).
    pub fn missing_around(&self, year: i32) -> Vec<i32> {
        [Some(year), year.checked_add(1)]
            .into_iter()
            .flatten()
            .filter(|y| !self.covers(*y))
            .collect()
    }

    /// The `source` a year's file gives, if it is loaded and gives one.
    pub fn source(&self, year: i32) -> Option<&str> {
        self.years.get(&year).and_then(|y| y.source.as_deref())
    }

    /// The origin (path) a year was loaded from.
    pub fn origin(&self, year: i32) -> Option<&str> {
        self.years.get(&year).map(|y| y.origin.as_str())
    }

    /// What the calendar says about `date`.
    pub fn day(&self, date: NaiveDate) -> Day {
        let plain = |provisional| Day {
            date,
            kind: weekday_kind(date.weekday()),
            holiday: None,
            holiday_zh: None,
            provisional,
        };
        let Some(data) = self.years.get(&date.year()) else {
            return plain(true);
        };
        let Some(special) = data.special.get(&date) else {
            return plain(false);
        };
        let info = data.holidays.get(special.holiday);
        Day {
            date,
            kind: if special.off {
                DayKind::DayOff
            } else {
                DayKind::Workday
            },
            holiday: info.map(|h| h.name.clone()),
            holiday_zh: info.and_then(|h| h.name_zh.clone()),
            provisional: false,
        }
    }

    /// Whether `date` is a working day.
    pub fn is_workday(&self, date: NaiveDate) -> Checked<bool> {
        Cursor::new(self).is_workday(date)
    }

    /// The deadline `n` working days after `date`: `date` itself is not counted; the result is
    /// the `n`-th working day after `date` (always a working day when `n >= 1`; `date` itself
    /// when `n == 0`). Provisional when any day in `(date, result]` lies in a year that is not
    /// loaded. Example: Friday 2025-09-26 + 10 = Thursday 2025-10-16.
    ///
    /// At the end of chrono's date range (year 262143) the walk stops there, provisional.
    pub fn add_workdays(&self, date: NaiveDate, n: WorkingDays) -> Checked<NaiveDate> {
        let mut cursor = Cursor::new(self);
        let mut d = date;
        let mut left = n.get();
        let mut provisional = false;
        while left > 0 {
            let Some(next) = d.succ_opt() else {
                return Checked {
                    value: d,
                    provisional: true,
                };
            };
            d = next;
            let w = cursor.is_workday(d);
            provisional |= w.provisional;
            if w.value {
                left -= 1;
            }
        }
        Checked {
            value: d,
            provisional,
        }
    }

    /// For reminders ("`n` working days before the due date"): the working day `r` with
    /// `between(r, due) == n`, i.e. the (n+1)-th working day counting back from `due`
    /// inclusive. When `due` is a working day this is the n-th working day strictly before
    /// `due`, and `add_workdays(r, n) == due`; with `n == 0` it is `due` itself. When `due` is
    /// not a working day, `r` is the (n+1)-th working day before it (`n == 0`: the last working
    /// day before `due`). Provisional when any day in `[r, due]` lies in a year that is not
    /// loaded. Example: due Thursday 2025-10-16, n = 10 -> Friday 2025-09-26.
    ///
    /// At the start of chrono's date range the walk stops there, provisional.
    pub fn workdays_before(&self, due: NaiveDate, n: WorkingDays) -> Checked<NaiveDate> {
        let mut cursor = Cursor::new(self);
        let mut d = due;
        // Working days still to pass, counting `d` itself: n + 1 in all.
        let mut left = n.get() + 1;
        let mut provisional = false;
        loop {
            let w = cursor.is_workday(d);
            provisional |= w.provisional;
            if w.value {
                left -= 1;
                if left == 0 {
                    return Checked {
                        value: d,
                        provisional,
                    };
                }
            }
            let Some(prev) = d.pred_opt() else {
                return Checked {
                    value: d,
                    provisional: true,
                };
            };
            d = prev;
        }
    }

    /// The number of working days `d` with `a < d <= b` (0 when `b <= a`), so that
    /// `between(d, add_workdays(d, n)) == n`. Provisional when any year of `(a, b]` is not
    /// loaded. Runs in time proportional to the holiday entries of the loaded years in range.
    pub fn between(&self, a: NaiveDate, b: NaiveDate) -> Checked<u32> {
        let zero = Checked {
            value: 0,
            provisional: false,
        };
        if b <= a {
            return zero;
        }
        let Some(start) = a.succ_opt() else {
            return zero;
        };
        // Monday-Friday days in [start, b].
        let days = (b - a).num_days(); // > 0
        let mut count = days / 7 * 5;
        let mut wd = start.weekday();
        for _ in 0..days % 7 {
            if !is_weekend_day(wd) {
                count += 1;
            }
            wd = wd.succ();
        }
        // Corrections from the loaded years in range.
        let (first_year, last_year) = (start.year(), b.year());
        let mut loaded = 0i64;
        for data in self.years.range(first_year..=last_year).map(|(_, d)| d) {
            loaded += 1;
            for (date, special) in &data.special {
                if *date < start || *date > b {
                    continue;
                }
                match (special.off, is_weekend_day(date.weekday())) {
                    (true, false) => count -= 1, // statutory day off on a weekday
                    (false, true) => count += 1, // adjusted workday on a weekend
                    _ => {}                      // weekend day off: already not counted
                }
            }
        }
        let span = i64::from(last_year) - i64::from(first_year) + 1;
        Checked {
            value: u32::try_from(count.max(0)).unwrap_or(u32::MAX),
            provisional: loaded != span,
        }
    }
}

/// Classifies dates one after another, looking each year up once.
struct Cursor<'c> {
    cal: &'c Calendar,
    year: Option<(i32, Option<&'c YearData>)>,
}

impl<'c> Cursor<'c> {
    fn new(cal: &'c Calendar) -> Self {
        Cursor { cal, year: None }
    }

    fn is_workday(&mut self, date: NaiveDate) -> Checked<bool> {
        let y = date.year();
        let data = match self.year {
            Some((cached, data)) if cached == y => data,
            _ => {
                let data = self.cal.years.get(&y);
                self.year = Some((y, data));
                data
            }
        };
        match data {
            None => Checked {
                value: !is_weekend_day(date.weekday()),
                provisional: true,
            },
            Some(data) => Checked {
                value: match data.special.get(&date) {
                    Some(s) => !s.off,
                    None => !is_weekend_day(date.weekday()),
                },
                provisional: false,
            },
        }
    }
}

fn insert_year(
    years: &mut BTreeMap<i32, YearData>,
    year: i32,
    data: YearData,
) -> Result<(), CalendarError> {
    if let Some(first) = years.get(&year) {
        return Err(CalendarError::DuplicateYear {
            at: Location {
                origin: data.origin,
                line: Some(data.year_line),
            },
            year,
            first_origin: first.origin.clone(),
        });
    }
    years.insert(year, data);
    Ok(())
}

fn parse_year_file(origin: &str, text: &str) -> Result<(i32, YearData), CalendarError> {
    let at = |offset: Option<usize>| Location {
        origin: origin.to_owned(),
        line: offset.map(|o| line_of(text, o)),
    };
    let file: YearFile = toml::from_str(text).map_err(|e| CalendarError::Syntax {
        at: at(e.span().map(|s| s.start)),
        message: e.message().trim().to_owned(),
    })?;
    let year = i32::try_from(*file.year.get_ref())
        .ok()
        .filter(|y| (MIN_YEAR..=MAX_YEAR).contains(y))
        .ok_or_else(|| CalendarError::BadYear {
            at: at(Some(file.year.span().start)),
            year: *file.year.get_ref(),
        })?;

    let mut data = YearData {
        origin: origin.to_owned(),
        year_line: line_of(text, file.year.span().start),
        source: file.source.filter(|s| !s.trim().is_empty()),
        holidays: Vec::new(),
        special: HashMap::new(),
    };
    for h in &file.holidays {
        let name = h.name.get_ref().trim().to_owned();
        if name.is_empty() {
            return Err(CalendarError::EmptyName {
                at: at(Some(h.name.span().start)),
            });
        }
        if h.days_off.is_empty() && h.adjusted_workdays.is_empty() {
            return Err(CalendarError::EmptyHoliday {
                at: at(Some(h.name.span().start)),
                holiday: name,
            });
        }
        let index = data.holidays.len();
        data.holidays.push(HolidayInfo {
            name: name.clone(),
            name_zh: h
                .name_zh
                .as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        });
        for (list, values, off) in [
            (DAYS_OFF, &h.days_off, true),
            (ADJUSTED_WORKDAYS, &h.adjusted_workdays, false),
        ] {
            for value in values {
                let here = at(Some(value.span().start));
                let date =
                    parse_date_value(value.get_ref()).ok_or_else(|| CalendarError::BadDate {
                        at: here.clone(),
                        holiday: name.clone(),
                        list,
                        value: describe_value(value.get_ref()),
                    })?;
                if date.year() != year {
                    return Err(CalendarError::DateOutsideYear {
                        at: here,
                        holiday: name.clone(),
                        list,
                        date,
                        year,
                    });
                }
                if !off && !is_weekend_day(date.weekday()) {
                    return Err(CalendarError::AdjustedWorkdayNotWeekend {
                        at: here,
                        holiday: name.clone(),
                        date,
                        weekday: date.weekday(),
                    });
                }
                match data.special.entry(date) {
                    Entry::Vacant(slot) => {
                        slot.insert(Special {
                            off,
                            holiday: index,
                        });
                    }
                    Entry::Occupied(slot) => {
                        let prev = *slot.get();
                        let prev_name = data
                            .holidays
                            .get(prev.holiday)
                            .map(|h| h.name.clone())
                            .unwrap_or_default();
                        return Err(if prev.off == off {
                            CalendarError::DuplicateDate {
                                at: here,
                                date,
                                list,
                                first_holiday: prev_name,
                                second_holiday: name.clone(),
                            }
                        } else if prev.off {
                            CalendarError::OffAndWorkday {
                                at: here,
                                date,
                                off_holiday: prev_name,
                                workday_holiday: name.clone(),
                            }
                        } else {
                            CalendarError::OffAndWorkday {
                                at: here,
                                date,
                                off_holiday: name.clone(),
                                workday_holiday: prev_name,
                            }
                        });
                    }
                }
            }
        }
    }

    let new_year_off = NaiveDate::from_ymd_opt(year, 1, 1)
        .and_then(|d| data.special.get(&d))
        .is_some_and(|s| s.off);
    if !new_year_off {
        return Err(CalendarError::MissingNewYear { at: at(None), year });
    }
    Ok((year, data))
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()
        .iter()
        .take(offset)
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// A date from a list entry: a `"YYYY-MM-DD"` string or a bare TOML local date.
fn parse_date_value(value: &toml::Value) -> Option<NaiveDate> {
    match value {
        toml::Value::String(s) => parse_iso_date(s),
        toml::Value::Datetime(dt) => match (dt.date, dt.time, dt.offset) {
            (Some(d), None, None) => {
                NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Strict `YYYY-MM-DD` (chrono alone would accept `2025-1-1`).
fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let shape_ok = s.len() == 10
        && s.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
}

fn describe_value(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => format!("{s:?}"),
        toml::Value::Datetime(dt) => dt.to_string(),
        toml::Value::Integer(i) => i.to_string(),
        other => format!("a {}", other.type_str()),
    }
}

fn is_weekend_day(wd: Weekday) -> bool {
    matches!(wd, Weekday::Sat | Weekday::Sun)
}

fn weekday_kind(wd: Weekday) -> DayKind {
    if is_weekend_day(wd) {
        DayKind::DayOff
    } else {
        DayKind::Workday
    }
}

fn weekday_name(wd: Weekday) -> &'static str {
    match wd {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// The Asia/Shanghai calendar day of an instant: the day every rule counts in.
pub fn shanghai_day(at: chrono::DateTime<chrono::Utc>) -> NaiveDate {
    at.with_timezone(&chrono_tz::Asia::Shanghai).date_naive()
}

/// `2025年10月6日`: a date as formal Chinese writes it (notices, e-mails, pages).
pub fn zh_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    format!("{}年{}月{}日", d.year(), d.month(), d.day())
}

/// The warning for status output and start-up when the current or next year has no data.
pub fn calendar_warning(calendar: &Calendar, today: chrono::NaiveDate) -> Option<String> {
    let missing = calendar.missing_around(chrono::Datelike::year(&today));
    (!missing.is_empty()).then(|| {
        format!(
            "working-day calendar has no data for {}: deadlines reaching into {} are provisional \
             (computed Monday-Friday) until rules/calendar/YYYY.toml is added from the State Council notice",
            join_years(&missing),
            if missing.len() == 1 { "that year" } else { "those years" }
        )
    })
}

fn join_years(years: &[i32]) -> String {
    years
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(" and ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cal() -> Calendar {
        Calendar::builtin().expect("builtin calendar parses")
    }

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("test date")
    }

    fn wd(n: u32) -> WorkingDays {
        WorkingDays::new(n).expect("test count")
    }

    fn add(c: &Calendar, s: &str, n: u32) -> NaiveDate {
        let r = c.add_workdays(d(s), wd(n));
        assert!(!r.provisional, "{s} + {n} unexpectedly provisional");
        r.value
    }

    /// The reference JSON: (days off date -> name, adjusted workdays date -> name).
    struct Reference {
        off: HashMap<NaiveDate, String>,
        work: HashMap<NaiveDate, String>,
    }

    impl Reference {
        fn load() -> Reference {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/cn-holidays.json"
            );
            let text = std::fs::read_to_string(path).expect("read cn-holidays.json");
            let json: serde_json::Value = serde_json::from_str(&text).expect("parse JSON");
            let map = |key: &str| -> HashMap<NaiveDate, String> {
                json[key]
                    .as_object()
                    .expect("object")
                    .iter()
                    .map(|(k, v)| (d(k), v.as_str().expect("name").to_owned()))
                    .collect()
            };
            Reference {
                off: map("days_off"),
                work: map("adjusted_workdays"),
            }
        }

        /// Independent rule straight from the JSON.
        fn is_workday(&self, date: NaiveDate) -> bool {
            self.work.contains_key(&date)
                || (!is_weekend_day(date.weekday()) && !self.off.contains_key(&date))
        }

        fn add(&self, date: NaiveDate, n: u32) -> NaiveDate {
            let mut d = date;
            let mut left = n;
            while left > 0 {
                d = d.succ_opt().expect("date");
                if self.is_workday(d) {
                    left -= 1;
                }
            }
            d
        }
    }

    fn dates(from: &str, to: &str) -> impl Iterator<Item = NaiveDate> {
        let end = d(to);
        d(from).iter_days().take_while(move |x| *x <= end)
    }

    #[test]
    fn builtin_parses_and_covers_2019_to_2026() {
        let c = cal();
        assert_eq!(c.years(), (2019..=2026).collect::<Vec<_>>());
        for (origin, _) in BUILTIN_YEARS {
            let year: i32 = origin
                .trim_start_matches("rules/calendar/")
                .trim_end_matches(".toml")
                .parse()
                .expect("year in file name");
            assert_eq!(c.origin(year), Some(*origin));
            assert!(
                c.source(year).is_some_and(|s| s.contains("国务院办公厅")),
                "{origin} names its source"
            );
        }
    }

    #[test]
    fn brief_example() {
        let c = cal();
        let r = c.add_workdays(d("2025-09-26"), wd(10));
        assert_eq!(
            r,
            Checked {
                value: d("2025-10-16"),
                provisional: false
            }
        );
        assert_eq!(r.value.weekday(), Weekday::Thu);
        assert_eq!(c.between(d("2025-09-26"), d("2025-10-16")).value, 10);
        assert_eq!(
            c.workdays_before(d("2025-10-16"), wd(10)).value,
            d("2025-09-26")
        );
    }

    #[test]
    fn agrees_with_reference_json_on_every_day_2019_to_2026() {
        let c = cal();
        let r = Reference::load();
        let mut checked = 0;
        for date in dates("2019-01-01", "2026-12-31") {
            let day = c.day(date);
            assert!(!day.provisional, "{date}");
            assert_eq!(day.date, date);
            let expect_work = r.is_workday(date);
            assert_eq!(day.kind == DayKind::Workday, expect_work, "{date}");
            assert_eq!(c.is_workday(date).value, expect_work, "{date}");
            let expect_name = r.off.get(&date).or_else(|| r.work.get(&date));
            assert_eq!(day.holiday.as_ref(), expect_name, "{date}");
            assert_eq!(
                day.is_adjusted_workday(),
                r.work.contains_key(&date),
                "{date}"
            );
            assert_eq!(day.is_holiday(), r.off.contains_key(&date), "{date}");
            if day.holiday.is_some() {
                assert!(day.holiday_zh.is_some(), "{date} has a Chinese name");
            }
            checked += 1;
        }
        assert_eq!(checked, 2922);
    }

    /// Runs of consecutive days off in the reference (one per holiday block, roughly).
    fn reference_blocks(r: &Reference) -> Vec<(NaiveDate, NaiveDate)> {
        let mut offs: Vec<NaiveDate> = r
            .off
            .keys()
            .copied()
            .filter(|x| (2019..=2026).contains(&x.year()))
            .collect();
        offs.sort();
        let mut blocks: Vec<(NaiveDate, NaiveDate)> = Vec::new();
        for x in offs {
            match blocks.last_mut() {
                Some((_, end)) if end.succ_opt() == Some(x) => *end = x,
                _ => blocks.push((x, x)),
            }
        }
        blocks
    }

    #[test]
    fn add_workdays_across_every_holiday_block() {
        let c = cal();
        let r = Reference::load();
        let blocks = reference_blocks(&r);
        assert!(blocks.len() >= 50, "{} blocks", blocks.len());
        for (first, last) in blocks {
            // Last working day before the block.
            let mut before = first.pred_opt().expect("date");
            while !r.is_workday(before) {
                before = before.pred_opt().expect("date");
            }
            let mut starts = vec![before];
            starts.extend(first.iter_days().take_while(|x| *x <= last));
            for start in starts {
                for n in [1, 2, 5, 10, 15] {
                    let got = c.add_workdays(start, wd(n));
                    if start.year() < 2019 {
                        // 2018 is not loaded: the walk touches it, so it must say so.
                        assert!(got.provisional, "{start} + {n}");
                        continue;
                    }
                    let want = r.add(start, n);
                    assert_eq!(got.value, want, "{start} + {n} (block {first}..{last})");
                    assert!(!got.provisional, "{start} + {n}");
                    assert!(c.is_workday(got.value).value);
                    assert_eq!(c.between(start, got.value).value, n, "{start} + {n}");
                    // Back from the deadline: the last working day on or before `start`.
                    let want_back = before_or_on(&r, start);
                    let back = c.workdays_before(got.value, wd(n));
                    if want_back.year() < 2019 {
                        assert!(back.provisional, "{start} + {n} back");
                    } else {
                        assert_eq!(back.value, want_back, "{start} + {n} back");
                        assert!(!back.provisional, "{start} + {n} back");
                    }
                }
            }
        }
    }

    fn before_or_on(r: &Reference, date: NaiveDate) -> NaiveDate {
        let mut x = date;
        while !r.is_workday(x) {
            x = x.pred_opt().expect("date");
        }
        x
    }

    /// Hand-checked against the State Council notices (not derived from the data files).
    #[test]
    fn pinned_dates_with_adjusted_workdays() {
        let c = cal();
        let cases: &[(&str, u32, &str)] = &[
            // Spring Festival 2024: off Sat 02-10 .. Sat 02-17; work Sun 02-04, Sun 02-18.
            // 02-09 (除夕, Friday) was a working day.
            ("2024-02-02", 1, "2024-02-04"),
            ("2024-02-04", 1, "2024-02-05"),
            ("2024-02-08", 1, "2024-02-09"),
            ("2024-02-09", 1, "2024-02-18"),
            ("2024-02-18", 1, "2024-02-19"),
            ("2024-02-09", 10, "2024-02-29"),
            // Spring Festival 2025: off Tue 01-28 .. Tue 02-04; work Sun 01-26, Sat 02-08.
            ("2025-01-24", 1, "2025-01-26"),
            ("2025-01-26", 1, "2025-01-27"),
            ("2025-01-27", 1, "2025-02-05"),
            ("2025-01-24", 5, "2025-02-07"),
            ("2025-01-24", 6, "2025-02-08"),
            ("2025-01-24", 7, "2025-02-10"),
            // Spring Festival 2026: off Sun 02-15 .. Mon 02-23; work Sat 02-14, Sat 02-28.
            ("2026-02-13", 1, "2026-02-14"),
            ("2026-02-14", 1, "2026-02-24"),
            ("2026-02-27", 1, "2026-02-28"),
            ("2026-02-28", 1, "2026-03-02"),
            ("2026-02-13", 10, "2026-03-05"),
            // National Day 2019: off Tue 10-01 .. Mon 10-07; work Sun 09-29, Sat 10-12.
            ("2019-09-27", 1, "2019-09-29"),
            ("2019-09-29", 1, "2019-09-30"),
            ("2019-09-30", 1, "2019-10-08"),
            ("2019-10-11", 1, "2019-10-12"),
            ("2019-09-27", 10, "2019-10-16"),
            // Mid-autumn + National Day 2023: off Fri 09-29 .. Fri 10-06; work Sat 10-07, Sun 10-08.
            ("2023-09-28", 1, "2023-10-07"),
            ("2023-09-28", 2, "2023-10-08"),
            ("2023-09-28", 3, "2023-10-09"),
            ("2023-09-28", 10, "2023-10-18"),
            // National Day + Mid-autumn 2025: off Wed 10-01 .. Wed 10-08; work Sun 09-28, Sat 10-11.
            ("2025-09-26", 1, "2025-09-28"),
            ("2025-09-26", 10, "2025-10-16"),
            ("2025-09-30", 1, "2025-10-09"),
            ("2025-10-03", 1, "2025-10-09"),
            ("2025-10-10", 1, "2025-10-11"),
            ("2025-10-11", 1, "2025-10-13"),
            // Labour Day 2025: off Thu 05-01 .. Mon 05-05; work Sun 04-27 (only).
            ("2025-04-25", 1, "2025-04-27"),
            ("2025-04-27", 1, "2025-04-28"),
            ("2025-04-30", 1, "2025-05-06"),
            ("2025-04-25", 10, "2025-05-13"),
            // New Year 2026: off Thu 01-01 .. Sat 01-03; work Sun 01-04 (across the year end).
            ("2025-12-31", 1, "2026-01-04"),
            ("2025-12-31", 2, "2026-01-05"),
            // New Year 2024: off Sat 2023-12-30 .. Mon 2024-01-01.
            ("2023-12-29", 1, "2024-01-02"),
        ];
        for (from, n, want) in cases {
            assert_eq!(add(&c, from, *n), d(want), "{from} + {n}");
            assert_eq!(
                c.between(d(from), d(want)).value,
                *n,
                "between {from} {want}"
            );
        }
        assert_eq!(c.between(d("2025-09-30"), d("2025-10-08")).value, 0);
        assert_eq!(
            c.workdays_before(d("2025-10-09"), wd(1)).value,
            d("2025-09-30")
        );
        assert_eq!(
            c.workdays_before(d("2026-03-05"), wd(10)).value,
            d("2026-02-13")
        );
        // Reminder for a due date on a day off: counted from the working days before it.
        assert_eq!(
            c.workdays_before(d("2025-10-05"), wd(0)).value,
            d("2025-09-30")
        );
        assert_eq!(
            c.workdays_before(d("2025-10-05"), wd(1)).value,
            d("2025-09-29")
        );
    }

    #[test]
    fn day_details() {
        let c = cal();
        let national = c.day(d("2025-10-04"));
        assert_eq!(national.kind, DayKind::DayOff);
        assert_eq!(national.holiday.as_deref(), Some("National Day"));
        assert_eq!(national.holiday_zh.as_deref(), Some("国庆节"));
        let mid_autumn = c.day(d("2025-10-06"));
        assert_eq!(mid_autumn.holiday.as_deref(), Some("Mid-autumn Festival"));
        assert_eq!(mid_autumn.holiday_zh.as_deref(), Some("中秋节"));
        let adjusted = c.day(d("2025-09-28"));
        assert_eq!(adjusted.kind, DayKind::Workday);
        assert!(adjusted.is_adjusted_workday());
        assert_eq!(adjusted.holiday.as_deref(), Some("National Day"));
        let weekend = c.day(d("2025-10-18"));
        assert_eq!(
            (weekend.kind, weekend.holiday, weekend.provisional),
            (DayKind::DayOff, None, false)
        );
        let plain = c.day(d("2025-10-17"));
        assert_eq!((plain.kind, plain.holiday), (DayKind::Workday, None));
    }

    #[test]
    fn provisional_outside_loaded_years() {
        let c = cal();
        // Into 2027, which is not loaded: computed by Monday-Friday, flagged.
        let r = c.add_workdays(d("2026-12-25"), wd(5));
        assert_eq!(r.value, d("2027-01-01"));
        assert!(r.provisional);
        assert!(!c.add_workdays(d("2026-12-24"), wd(4)).provisional);
        assert_eq!(add(&c, "2026-12-24", 4), d("2026-12-30"));
        assert_eq!(add(&c, "2026-12-30", 1), d("2026-12-31"));
        assert!(c.add_workdays(d("2026-12-31"), wd(1)).provisional);
        // Before 2019.
        let b = c.workdays_before(d("2019-01-02"), wd(1));
        assert!(b.provisional);
        assert_eq!(b.value, d("2018-12-31"));
        assert!(!c.workdays_before(d("2019-01-03"), wd(1)).provisional);
        assert!(c.add_workdays(d("2018-12-28"), wd(1)).provisional);
        assert!(c.add_workdays(d("2018-06-01"), wd(300)).provisional);
        // between: (a, b] decides, a itself is not consulted.
        assert!(!c.between(d("2018-12-31"), d("2019-01-10")).provisional);
        assert!(c.between(d("2018-12-30"), d("2019-01-10")).provisional);
        assert!(c.between(d("2026-12-30"), d("2027-01-01")).provisional);
        assert!(!c.between(d("2026-12-30"), d("2026-12-31")).provisional);
        assert!(c.between(d("2017-01-01"), d("2030-01-01")).provisional);
        assert!(!c.between(d("2030-01-01"), d("2017-01-01")).provisional);
        // day / is_workday.
        assert!(c.day(d("2027-01-01")).provisional);
        assert_eq!(c.day(d("2027-01-01")).kind, DayKind::Workday); // Friday, by the plain rule
        assert!(c.is_workday(d("2018-12-29")).provisional);
        assert!(!c.is_workday(d("2018-12-29")).value); // really an adjusted workday: hence the flag
        // n = 0 depends on no day.
        assert_eq!(
            c.add_workdays(d("2030-05-05"), wd(0)),
            Checked {
                value: d("2030-05-05"),
                provisional: false
            }
        );
        // Empty calendar: everything provisional.
        let e = Calendar::empty();
        assert!(e.add_workdays(d("2025-09-26"), wd(10)).provisional);
        assert_eq!(
            e.add_workdays(d("2025-09-26"), wd(10)).value,
            d("2025-10-10")
        );
    }

    #[test]
    fn missing_around_and_covers() {
        let c = cal();
        assert!(c.covers(2019) && c.covers(2026) && !c.covers(2018) && !c.covers(2027));
        assert_eq!(c.missing_around(2025), Vec::<i32>::new());
        assert_eq!(c.missing_around(2026), vec![2027]);
        assert_eq!(c.missing_around(2018), vec![2018]);
        assert_eq!(c.missing_around(2030), vec![2030, 2031]);
        assert_eq!(c.missing_around(i32::MAX), vec![i32::MAX]);
    }

    #[test]
    fn between_matches_a_day_by_day_count_and_add_workdays() {
        let c = cal();
        let naive = |a: NaiveDate, b: NaiveDate| -> (u32, bool) {
            let mut n = 0;
            let mut prov = false;
            let mut x = a;
            while x < b {
                x = x.succ_opt().expect("date");
                let w = c.is_workday(x);
                prov |= w.provisional;
                n += u32::from(w.value);
            }
            (n, prov)
        };
        let starts: Vec<NaiveDate> = dates("2018-11-01", "2027-02-28").step_by(3).collect();
        for (i, a) in starts.iter().enumerate() {
            for span in [0i64, 1, 2, 6, 7, 8, 13, 30, 45, 200, 400] {
                let b = *a + chrono::Duration::days(span + (i as i64 % 5));
                let got = c.between(*a, b);
                assert_eq!(
                    (got.value, got.provisional),
                    naive(*a, b),
                    "between({a}, {b})"
                );
                assert_eq!(c.between(b, *a).value, 0, "between({b}, {a})");
            }
            for n in [0u32, 1, 3, 10, 20] {
                let r = c.add_workdays(*a, wd(n));
                let btw = c.between(*a, r.value);
                assert_eq!(btw.value, n, "between({a}, {a} + {n})");
                assert_eq!(btw.provisional, r.provisional, "{a} + {n}");
                if n > 0 {
                    let prev = r.value.pred_opt().expect("date");
                    assert_eq!(c.between(*a, prev).value, n - 1, "{a} + {n} is the first");
                    assert!(c.is_workday(r.value).value);
                }
            }
        }
        // A long range stays exact and quick.
        let long = c.between(d("1900-01-01"), d("2100-12-31"));
        assert!(long.provisional);
        assert_eq!(long.value, naive(d("1900-01-01"), d("2100-12-31")).0);
    }

    #[test]
    fn working_days_bounds() {
        assert_eq!(WorkingDays::try_from(0u32).map(WorkingDays::get), Ok(0));
        assert!(WorkingDays::try_from(0u32).is_ok_and(WorkingDays::is_zero));
        assert_eq!(WorkingDays::try_from(3650i64).map(u32::from), Ok(3650));
        assert_eq!(
            WorkingDays::try_from(3651u32),
            Err(WorkingDaysError::TooLarge(3651))
        );
        assert_eq!(
            WorkingDays::try_from(-1i64),
            Err(WorkingDaysError::Negative(-1))
        );
        assert_eq!(
            WorkingDays::try_from(i64::MAX),
            Err(WorkingDaysError::TooLarge(i64::MAX))
        );
        let msg = WorkingDaysError::Negative(-3).to_string();
        assert!(msg.contains("negative") && msg.contains("-3"), "{msg}");
        // From rule files and JSON.
        #[derive(Deserialize)]
        struct Rule {
            deadline: WorkingDays,
        }
        let ok: Rule = toml::from_str("deadline = 10").expect("parses");
        assert_eq!(ok.deadline.get(), 10);
        assert!(toml::from_str::<Rule>("deadline = -1").is_err());
        assert!(toml::from_str::<Rule>("deadline = 4000").is_err());
        let j: WorkingDays = serde_json::from_str("15").expect("json");
        assert_eq!(j.to_string(), "15");
        assert_eq!(serde_json::to_string(&j).expect("json"), "15");
        // The maximum does not overflow anything.
        let c = cal();
        let far = c.add_workdays(d("2025-01-01"), wd(WorkingDays::MAX));
        assert!(far.provisional);
        assert_eq!(
            c.between(d("2025-01-01"), far.value).value,
            WorkingDays::MAX
        );
        let back = c.workdays_before(d("2025-01-01"), wd(WorkingDays::MAX));
        assert_eq!(
            c.between(back.value, d("2025-01-01")).value,
            WorkingDays::MAX
        );
    }

    const GOOD: &str = r#"
year = 2030
source = "test"

[[holiday]]
name = "New Year's Day"
days_off = ["2030-01-01"]

[[holiday]]
name = "Spring Festival"
name_zh = "春节"
days_off = [2030-02-04, "2030-02-05"]
adjusted_workdays = ["2030-02-09"]
"#;

    fn parse_err(text: &str) -> String {
        match Calendar::parse_years([("rules/calendar/2030.toml", text)]) {
            Ok(_) => panic!("expected an error for:\n{text}"),
            Err(e) => e.to_string(),
        }
    }

    fn assert_err(text: &str, needles: &[&str]) {
        let msg = parse_err(text);
        assert!(
            msg.starts_with("rules/calendar/2030.toml"),
            "names the file: {msg}"
        );
        for n in needles {
            assert!(msg.contains(n), "{msg:?} should contain {n:?}");
        }
    }

    #[test]
    fn parses_a_small_file_with_bare_toml_dates() {
        let c = Calendar::parse_years([("x/2030.toml", GOOD)]).expect("parses");
        assert_eq!(c.years(), vec![2030]);
        assert_eq!(c.source(2030), Some("test"));
        assert_eq!(
            c.day(d("2030-02-04")).holiday.as_deref(),
            Some("Spring Festival")
        );
        assert!(c.is_workday(d("2030-02-09")).value); // a Saturday made a workday
        assert_eq!(c.day(d("2030-01-01")).holiday_zh, None);
    }

    #[test]
    fn error_messages_for_malformed_files() {
        let bad_date = GOOD.replace("\"2030-02-05\"", "\"2030-02-30\"");
        assert_err(
            &bad_date,
            &[
                ":12:",
                "Spring Festival",
                "days_off",
                "\"2030-02-30\"",
                "not a date",
            ],
        );
        let short = GOOD.replace("\"2030-02-05\"", "\"2030-2-5\"");
        assert_err(&short, &["\"2030-2-5\"", "not a date"]);
        let number = GOOD.replace("\"2030-02-05\"", "20300205");
        assert_err(&number, &["20300205", "not a date"]);
        let with_time = GOOD.replace("2030-02-04,", "2030-02-04T08:00:00,");
        assert_err(&with_time, &["not a date"]);

        let wrong_year = GOOD.replace("\"2030-02-05\"", "\"2031-02-05\"");
        assert_err(&wrong_year, &[":12:", "2031-02-05 is not in 2030"]);

        let both = GOOD
            .replace(
                "adjusted_workdays = [\"2030-02-09\"]",
                "adjusted_workdays = [\"2030-02-09\", \"2030-01-05\"]",
            )
            .replace(
                "days_off = [\"2030-01-01\"]",
                "days_off = [\"2030-01-01\", \"2030-01-05\"]",
            );
        assert_err(
            &both,
            &[
                "2030-01-05 is both a day off (holiday \"New Year's Day\") and an adjusted workday (holiday \"Spring Festival\")",
            ],
        );

        let dup = GOOD.replace("\"2030-02-05\"", "\"2030-01-01\"");
        assert_err(
            &dup,
            &[
                "2030-01-01 is listed twice in days_off",
                "\"New Year's Day\"",
                "\"Spring Festival\"",
            ],
        );

        let weekday_work = GOOD.replace("\"2030-02-09\"", "\"2030-02-11\"");
        assert_err(
            &weekday_work,
            &[
                ":13:",
                "adjusted workday 2030-02-11 is a Monday",
                "Saturday or Sunday",
            ],
        );

        let no_new_year =
            GOOD.replace("days_off = [\"2030-01-01\"]", "days_off = [\"2030-01-02\"]");
        assert_err(&no_new_year, &["2030-01-01", "not listed as a day off"]);

        let empty = GOOD.replace("days_off = [\"2030-01-01\"]", "days_off = []");
        assert_err(&empty, &[":6:", "lists no dates"]);

        let unnamed = GOOD.replace("name = \"Spring Festival\"", "name = \" \"");
        assert_err(&unnamed, &[":10:", "empty name"]);

        let typo = GOOD.replace("adjusted_workdays", "adjusted_workday");
        assert_err(&typo, &["not a valid calendar file", "adjusted_workday"]);

        let no_year = GOOD.replace("year = 2030", "");
        assert_err(&no_year, &["not a valid calendar file", "year"]);

        let syntax = GOOD.replace("days_off = [2030-02-04,", "days_off = [2030-02-04");
        assert_err(&syntax, &["not a valid calendar file"]);

        let absurd = GOOD.replace("year = 2030", "year = 230");
        assert_err(&absurd, &[":2:", "year = 230"]);

        // Duplicate year across two files.
        let err = Calendar::parse_years([("a/2030.toml", GOOD), ("b/2030.toml", GOOD)])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.starts_with("b/2030.toml:2:"), "{err}");
        assert!(
            err.contains("year 2030 is already defined by a/2030.toml"),
            "{err}"
        );
    }

    #[test]
    fn overlay_replaces_builtin_years_and_adds_new_ones() {
        let c = Calendar::builtin_overlaid([("disk/2030.toml", GOOD)]).expect("parses");
        assert_eq!(
            c.years(),
            vec![2019, 2020, 2021, 2022, 2023, 2024, 2025, 2026, 2030]
        );
        let replaced_2025 = r#"
year = 2025
[[holiday]]
name = "New Year's Day"
days_off = ["2025-01-01"]
"#;
        let c = Calendar::builtin_overlaid([("disk/2025.toml", replaced_2025)]).expect("parses");
        assert_eq!(c.origin(2025), Some("disk/2025.toml"));
        assert!(c.is_workday(d("2025-10-08")).value);
        assert_eq!(c.origin(2024), Some("rules/calendar/2024.toml"));
    }
}
