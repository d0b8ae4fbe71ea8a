//! The local time zone's offset from UTC, for predate's `Date:` line, found the way the C
//! library's localtime does: `TZ` names a zoneinfo file (`:name`, `name` or `/path`) or
//! holds a POSIX rule (`EST5EDT,M3.2.0,M11.1.0`); without `TZ`, `/etc/localtime` rules; an
//! empty `TZ`, or anything unreadable, means UTC.

use std::io::Read;
use std::path::PathBuf;

use crate::date::Utc;
use crate::env;

/// The largest zoneinfo file read, in bytes.
pub const ZONEINFO_MAX: u64 = 256 * 1024;

const DEFAULT_DIR: &str = "/usr/share/zoneinfo";

/// Seconds east of UTC that local time is at `t` (seconds since the epoch).
pub fn offset(t: i64) -> i64 {
    let tz = env::var("TZ");
    let Some(tz) = tz else {
        return file_offset(PathBuf::from("/etc/localtime"), t).unwrap_or(0);
    };
    let (name, file_only) = match tz.strip_prefix(b":") {
        Some(n) => (n, true),
        None => (&tz[..], false),
    };
    if name.is_empty() {
        return 0;
    }
    let path = if name.starts_with(b"/") {
        PathBuf::from(String::from_utf8_lossy(name).into_owned())
    } else {
        let dir = env::var("TZDIR").map_or_else(
            || DEFAULT_DIR.to_string(),
            |d| String::from_utf8_lossy(&d).into_owned(),
        );
        PathBuf::from(dir).join(String::from_utf8_lossy(name).into_owned())
    };
    if let Some(o) = file_offset(path, t) {
        return o;
    }
    if file_only {
        return 0;
    }
    Rule::parse(name).map_or(0, |r| r.offset(t))
}

fn file_offset(path: PathBuf, t: i64) -> Option<i64> {
    let mut b = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(ZONEINFO_MAX)
        .read_to_end(&mut b)
        .ok()?;
    tzif_offset(&b, t)
}

fn be(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let s = b.get(at..at.checked_add(n)?)?;
    let mut v: i64 = if s.first()? & 0x80 != 0 { -1 } else { 0 };
    for &c in s {
        v = (v << 8) | i64::from(c);
    }
    Some(v)
}

/// The offset at `t` from the bytes of a TZif file (RFC 8536), version 1 or later.
pub fn tzif_offset(b: &[u8], t: i64) -> Option<i64> {
    if b.get(..4)? != b"TZif" {
        return None;
    }
    let counts = |at: usize| -> Option<[usize; 6]> {
        let mut c = [0usize; 6];
        for (i, v) in c.iter_mut().enumerate() {
            *v = usize::try_from(be(b, at + 20 + 4 * i, 4)?)
                .ok()
                .filter(|&n| n <= b.len())?;
        }
        Some(c)
    };
    let [isut, isstd, leap, time, types, chars] = counts(0)?;
    let v1_len = time * 5 + types * 6 + chars + leap * 8 + isstd + isut;
    let (at, width) = if *b.get(4)? >= b'2' {
        (44 + v1_len, 8)
    } else {
        (0, 4)
    };
    if b.get(at..at + 4)? != b"TZif" {
        return None;
    }
    let [isut, isstd, leap, time, types, chars] = counts(at)?;
    let data = at + 44;
    let idx_at = data + time * width;
    let types_at = idx_at + time;
    let utoff = |i: usize| -> Option<i64> {
        if i < types {
            be(b, types_at + 6 * i, 4)
        } else {
            None
        }
    };
    let count = (0..time)
        .take_while(|&i| be(b, data + i * width, width).is_some_and(|tt| tt <= t))
        .count();
    if width == 8 && count == time {
        let footer_at = types_at + types * 6 + chars + leap * 12 + isstd + isut;
        let footer = b.get(footer_at..)?;
        let rule = footer
            .strip_prefix(b"\n")
            .and_then(|f| f.split(|&c| c == b'\n').next());
        if let Some(r) = rule.filter(|r| !r.is_empty()).and_then(Rule::parse) {
            return Some(r.offset(t));
        }
    }
    match count.checked_sub(1) {
        None => utoff(0),
        Some(i) => utoff(usize::from(*b.get(idx_at + i)?)),
    }
}

/// When a daylight-saving period starts or ends: a day form and a time of day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Day {
    /// `Jn`: day 1-365, February 29 never counted.
    Julian(i64),
    /// `n`: day 0-365, February 29 counted.
    Zero(i64),
    /// `Mm.w.d`: weekday d of week w (5 = last) of month m.
    Month(i64, i64, i64),
}

/// A rule date with its time of day in seconds.
type When = (Day, i64);

/// A POSIX TZ rule: standard offset and, if it has one, daylight time and its dates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rule {
    std: i64,
    dst: Option<(i64, When, When)>,
}

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.0.first().copied()
    }
    fn eat(&mut self, c: u8) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.0 = self.0.get(1..).unwrap_or_default();
        }
        hit
    }
    fn number(&mut self) -> Option<i64> {
        let n = self.0.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 6 {
            return None;
        }
        let v = std::str::from_utf8(self.0.get(..n)?).ok()?.parse().ok()?;
        self.0 = self.0.get(n..)?;
        Some(v)
    }
    fn name(&mut self) -> Option<()> {
        let n = if self.eat(b'<') {
            let n = self.0.iter().position(|&c| c == b'>')?;
            self.0 = self.0.get(n + 1..)?;
            n
        } else {
            let n = self
                .0
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            self.0 = self.0.get(n..)?;
            n
        };
        (n >= 3).then_some(())
    }
    /// `[+-]hh[:mm[:ss]]` in seconds.
    fn time(&mut self) -> Option<i64> {
        let sign = if self.eat(b'-') {
            -1
        } else {
            self.eat(b'+');
            1
        };
        let mut secs = self.number()? * 3600;
        if self.eat(b':') {
            secs += self.number()? * 60;
            if self.eat(b':') {
                secs += self.number()?;
            }
        }
        Some(sign * secs)
    }
    fn day(&mut self) -> Option<When> {
        let day = if self.eat(b'J') {
            Day::Julian(self.number()?)
        } else if self.eat(b'M') {
            let m = self.number()?;
            self.eat(b'.').then_some(())?;
            let w = self.number()?;
            self.eat(b'.').then_some(())?;
            Day::Month(m, w, self.number()?)
        } else {
            Day::Zero(self.number()?)
        };
        let time = if self.eat(b'/') { self.time()? } else { 7200 };
        Some((day, time))
    }
}

impl Rule {
    /// Parses a POSIX TZ string; `None` if it is not one.
    pub fn parse(s: &[u8]) -> Option<Rule> {
        let mut c = Cursor(s);
        c.name()?;
        let std = -c.time()?;
        if c.peek().is_none() {
            return Some(Rule { std, dst: None });
        }
        c.name()?;
        let dst = if matches!(c.peek(), Some(b',') | None) {
            std + 3600
        } else {
            -c.time()?
        };
        let (start, end) = if c.eat(b',') {
            let start = c.day()?;
            c.eat(b',').then_some(())?;
            (start, c.day()?)
        } else {
            ((Day::Month(3, 2, 0), 7200), (Day::Month(11, 1, 0), 7200))
        };
        c.peek().is_none().then_some(Rule {
            std,
            dst: Some((dst, start, end)),
        })
    }

    /// Seconds east of UTC at `t`.
    pub fn offset(&self, t: i64) -> i64 {
        let Some((dst, start, end)) = self.dst else {
            return self.std;
        };
        let year = Utc::from_unix(t + self.std).year;
        let on = instant(year, start) - self.std;
        let off = instant(year, end) - dst;
        let summer = if on < off {
            on <= t && t < off
        } else {
            !(off <= t && t < on)
        };
        if summer { dst } else { self.std }
    }
}

fn is_leap(y: i64) -> bool {
    y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
}

/// Days from 1970-01-01 to the given date (month 1-12).
fn days(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The local-time instant (as seconds from the epoch, offset not applied) of a rule date.
fn instant(year: i64, (day, time): When) -> i64 {
    let jan1 = days(year, 1, 1);
    let d = match day {
        Day::Julian(n) => jan1 + n - 1 + i64::from(is_leap(year) && n >= 60),
        Day::Zero(n) => jan1 + n,
        Day::Month(m, w, wd) => {
            let first = days(year, m, 1);
            let first_wd = (first + 4).rem_euclid(7);
            let len = days(if m == 12 { year + 1 } else { year }, m % 12 + 1, 1) - first;
            let mut mday = (wd - first_wd).rem_euclid(7) + (w - 1) * 7;
            while mday >= len {
                mday -= 7;
            }
            first + mday
        }
    };
    d * 86_400 + time
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posix_rules_give_standard_and_summer_offsets() {
        let ny = Rule::parse(b"EST5EDT,M3.2.0,M11.1.0").unwrap();
        // 2024-01-15 12:00 UTC, 2024-07-15 12:00 UTC.
        assert_eq!(ny.offset(1_705_320_000), -5 * 3600);
        assert_eq!(ny.offset(1_721_044_800), -4 * 3600);
        // 2024-03-10 07:00 UTC is 02:00 EST: summer time starts then.
        assert_eq!(ny.offset(1_710_053_999), -5 * 3600);
        assert_eq!(ny.offset(1_710_054_000), -4 * 3600);
        let berlin = Rule::parse(b"CET-1CEST,M3.5.0,M10.5.0/3").unwrap();
        assert_eq!(berlin.offset(1_705_320_000), 3600);
        assert_eq!(berlin.offset(1_721_044_800), 7200);
        let sydney = Rule::parse(b"AEST-10AEDT,M10.1.0,M4.1.0/3").unwrap();
        assert_eq!(sydney.offset(1_705_320_000), 11 * 3600);
        assert_eq!(sydney.offset(1_721_044_800), 10 * 3600);
        assert_eq!(Rule::parse(b"UTC0").unwrap().offset(0), 0);
        assert_eq!(Rule::parse(b"<+0530>-5:30").unwrap().offset(0), 19_800);
        assert_eq!(
            Rule::parse(b"EST5EDT").unwrap().offset(1_721_044_800),
            -4 * 3600
        );
        for bad in [&b"UTC"[..], b"Europe/Berlin", b"EST5EDT,M3", b"X0", b""] {
            assert_eq!(Rule::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn rule_dates_land_on_the_right_days() {
        assert_eq!(days(1970, 1, 1), 0);
        assert_eq!(days(2000, 3, 1), 11_017);
        // The last Sunday of March 2024 is the 31st; the second Sunday the 10th.
        assert_eq!(
            instant(2024, (Day::Month(3, 5, 0), 0)),
            days(2024, 3, 31) * 86_400
        );
        assert_eq!(
            instant(2024, (Day::Month(3, 2, 0), 0)),
            days(2024, 3, 10) * 86_400
        );
        assert_eq!(
            instant(2024, (Day::Julian(60), 0)),
            days(2024, 3, 1) * 86_400
        );
        assert_eq!(
            instant(2024, (Day::Zero(59), 0)),
            days(2024, 2, 29) * 86_400
        );
    }

    #[test]
    fn tzif_files_are_read_with_their_footer() {
        // A version 2 file with no transitions, one type and a footer rule.
        let mut f = b"TZif2".to_vec();
        f.extend([0u8; 15]);
        f.extend([
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 4,
        ]);
        f.extend([0, 0, 0x0e, 0x10, 0, 0]);
        f.extend(b"CET\0");
        let v1 = f.clone();
        f.extend(v1);
        f.extend(b"\nCET-1CEST,M3.5.0,M10.5.0/3\n");
        assert_eq!(tzif_offset(&f, 1_705_320_000), Some(3600));
        assert_eq!(tzif_offset(&f, 1_721_044_800), Some(7200));
        assert_eq!(tzif_offset(b"not a zone file", 0), None);
        if let Ok(b) = std::fs::read("/usr/share/zoneinfo/Etc/UTC") {
            assert_eq!(tzif_offset(&b, 1_721_044_800), Some(0));
        }
        // The system's own zone files, where installed: 2024 winter and summer, 1990
        // summer, and a date past the last transition (served by the footer rule).
        for (zone, want) in [
            ("America/New_York", [-18_000, -14_400, -14_400, -14_400]),
            ("Europe/Berlin", [3600, 7200, 7200, 7200]),
            ("Asia/Kolkata", [19_800, 19_800, 19_800, 19_800]),
        ] {
            let Ok(b) = std::fs::read(format!("/usr/share/zoneinfo/{zone}")) else {
                continue;
            };
            let times = [
                1_705_320_000,
                1_721_044_800,
                646_747_200,
                4_102_444_800 + 16_416_000,
            ];
            let got: Vec<i64> = times.iter().map(|&t| tzif_offset(&b, t).unwrap()).collect();
            assert_eq!(got, want, "{zone}");
        }
    }
}
