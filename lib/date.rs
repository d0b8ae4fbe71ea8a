//! Dates in the forms qmail writes them, always in UTC.

/// A broken-down UTC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Utc {
    /// Year, e.g. 1995.
    pub year: i64,
    /// Month, 0 = January.
    pub mon: usize,
    /// Day of the month, 1-31.
    pub mday: u32,
    /// Day of the week, 0 = Sunday.
    pub wday: usize,
    /// Hour, 0-23.
    pub hour: u32,
    /// Minute, 0-59.
    pub min: u32,
    /// Second, 0-59.
    pub sec: u32,
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

impl Utc {
    /// The UTC time of a Unix timestamp.
    pub fn from_unix(t: i64) -> Utc {
        let days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        // Civil-from-days (H. Hinnant's algorithm), exact for the proleptic Gregorian calendar.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let mday = doy - (153 * mp + 2) / 5 + 1;
        let mon = if mp < 10 { mp + 2 } else { mp - 10 };
        let year = yoe + era * 400 + i64::from(mon <= 1);
        Utc {
            year,
            mon: usize::try_from(mon).unwrap_or(0),
            mday: u32::try_from(mday).unwrap_or(1),
            wday: usize::try_from((days + 4).rem_euclid(7)).unwrap_or(0),
            hour: u32::try_from(secs / 3600).unwrap_or(0),
            min: u32::try_from(secs % 3600 / 60).unwrap_or(0),
            sec: u32::try_from(secs % 60).unwrap_or(0),
        }
    }

    /// The current time.
    pub fn now() -> Utc {
        Utc::from_unix(now())
    }

    /// qmail's date822fmt: `26 Sep 1995 04:46:54 -0000` followed by a newline.
    pub fn rfc822(&self) -> String {
        format!(
            "{} {} {} {:02}:{:02}:{:02} -0000\n",
            self.mday,
            MONTHS.get(self.mon).unwrap_or(&"Jan"),
            self.year,
            self.hour,
            self.min,
            self.sec
        )
    }

    /// qmail's myctime, as in the mbox `From ` line: `Sun Mar 17 03:54:40 1996`, newline ended.
    pub fn ctime(&self) -> String {
        format!(
            "{} {} {:02} {:02}:{:02}:{:02} {}\n",
            DAYS.get(self.wday).unwrap_or(&"Sun"),
            MONTHS.get(self.mon).unwrap_or(&"Jan"),
            self.mday,
            self.hour,
            self.min,
            self.sec,
            self.year
        )
    }

    /// `YYYYMMDDhhmmss`, as in qmail-inject's Message-ID.
    pub fn compact(&self) -> String {
        format!(
            "{}{:02}{:02}{:02}{:02}{:02}",
            self.year,
            self.mon + 1,
            self.mday,
            self.hour,
            self.min,
            self.sec
        )
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_match_qmail() {
        // 812090814 = 26 Sep 1995 04:46:54 UTC, the example in qmail's documentation.
        let t = Utc::from_unix(812_090_814);
        assert_eq!(t.rfc822(), "26 Sep 1995 04:46:54 -0000\n");
        assert_eq!(
            Utc::from_unix(1_709_622_489).rfc822(),
            "5 Mar 2024 07:08:09 -0000\n"
        );
        assert_eq!(
            Utc::from_unix(827_034_880).ctime(),
            "Sun Mar 17 03:54:40 1996\n"
        );
        assert_eq!(Utc::from_unix(0).compact(), "19700101000000");
        assert_eq!(
            Utc::from_unix(951_782_400).rfc822(),
            "29 Feb 2000 00:00:00 -0000\n"
        );
    }
}
