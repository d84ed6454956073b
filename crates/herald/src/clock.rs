//! Time as the API shows it: `datetime` fields as `"YYYY-MM-DD HH:MM:SS"` in the configured
//! time zone, `date` fields as RFC 3339 in UTC. Stored times are Unix microseconds.

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Formats and parses the API's date-times in one time zone.
#[derive(Clone, Debug)]
pub struct Clock {
    tz: TimeZone,
}

/// Unix microseconds: how every time is stored.
pub type Micros = i64;

impl Clock {
    /// A clock for the IANA zone `name`; validated with the configuration, so it exists.
    pub fn new(name: &str) -> Result<Clock, jiff::Error> {
        Ok(Clock {
            tz: TimeZone::get(name)?,
        })
    }

    /// Now, in stored form.
    pub fn now(&self) -> Micros {
        Timestamp::now().as_microsecond()
    }

    /// `"2021-04-01 12:13:14"` in the configured zone.
    pub fn datetime(&self, at: Micros) -> String {
        let ts = Timestamp::from_microsecond(at).unwrap_or(Timestamp::UNIX_EPOCH);
        ts.to_zoned(self.tz.clone()).strftime("%Y-%m-%d %H:%M:%S").to_string()
    }

    /// Reads a `datetime` written in the configured zone, or an RFC 3339 instant.
    pub fn parse_datetime(&self, text: &str) -> Option<Micros> {
        if let Ok(ts) = text.parse::<Timestamp>() {
            return Some(ts.as_microsecond());
        }
        let civil = jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M:%S", text).ok()?;
        let zoned = civil.to_zoned(self.tz.clone()).ok()?;
        Some(zoned.timestamp().as_microsecond())
    }
}

/// `"2023-11-07T05:31:56Z"`: RFC 3339 in UTC, to the second.
pub fn rfc3339(at: Micros) -> String {
    let ts = Timestamp::from_microsecond(at).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: Micros = 1_617_279_194_000_000; // 2021-04-01 12:13:14 UTC

    #[test]
    fn datetimes_follow_the_configured_zone() {
        assert_eq!(Clock::new("UTC").unwrap().datetime(AT), "2021-04-01 12:13:14");
        assert_eq!(Clock::new("Europe/Paris").unwrap().datetime(AT), "2021-04-01 14:13:14");
        assert_eq!(rfc3339(AT), "2021-04-01T12:13:14Z");
    }

    #[test]
    fn datetimes_read_back_in_either_form() {
        let paris = Clock::new("Europe/Paris").unwrap();
        assert_eq!(paris.parse_datetime("2021-04-01 14:13:14"), Some(AT));
        assert_eq!(paris.parse_datetime("2021-04-01T12:13:14Z"), Some(AT));
        assert_eq!(paris.parse_datetime("yesterday"), None);
    }
}
