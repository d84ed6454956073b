//! Time: where Herald reads it, and how the API shows it. `datetime` fields are
//! `"YYYY-MM-DD HH:MM:SS"` in the configured time zone, `date` fields RFC 3339 in UTC; stored
//! times are Unix microseconds.
//!
//! Every part of Herald that asks what time it is asks a [`Clock`] it was given, so that tests
//! can hand it a manual one and move time themselves instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// Tells the time, and formats and parses the API's date-times in one time zone.
#[derive(Clone, Debug)]
pub struct Clock {
    tz: TimeZone,
    /// `None` reads the system's clock; a hand is moved by whoever holds it.
    hand: Option<Hand>,
}

/// Unix microseconds: how every time is stored.
pub type Micros = i64;

/// The hand of a manual clock: the time stands still until its holder moves it. Clocks made
/// with one hand share its time.
#[derive(Clone, Debug)]
pub struct Hand(Arc<AtomicI64>);

impl Hand {
    /// A hand standing at `at`.
    pub fn at(at: Micros) -> Hand {
        Hand(Arc::new(AtomicI64::new(at)))
    }

    pub fn now(&self) -> Micros {
        self.0.load(Ordering::SeqCst)
    }

    pub fn set(&self, at: Micros) {
        self.0.store(at, Ordering::SeqCst);
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_micros() as Micros, Ordering::SeqCst);
    }
}

impl Clock {
    /// The system's clock, for the IANA zone `name` (validated with the configuration, so it
    /// exists).
    pub fn new(name: &str) -> Result<Clock, jiff::Error> {
        Ok(Clock {
            tz: TimeZone::get(name)?,
            hand: None,
        })
    }

    /// A clock that reads `hand` instead of the system's clock.
    pub fn manual(name: &str, hand: &Hand) -> Result<Clock, jiff::Error> {
        Ok(Clock {
            hand: Some(hand.clone()),
            ..Clock::new(name)?
        })
    }

    /// Now, in stored form.
    pub fn now(&self) -> Micros {
        match &self.hand {
            Some(hand) => hand.now(),
            None => Timestamp::now().as_microsecond(),
        }
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

/// The day `at` falls on in UTC.
pub fn utc_day(at: Micros) -> jiff::civil::Date {
    let ts = Timestamp::from_microsecond(at).unwrap_or(Timestamp::UNIX_EPOCH);
    ts.to_zoned(TimeZone::UTC).date()
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

    #[test]
    fn a_manual_clock_moves_only_with_its_hand() {
        let hand = Hand::at(AT);
        let clock = Clock::manual("UTC", &hand).unwrap();
        let other = Clock::manual("Europe/Paris", &hand).unwrap();
        assert_eq!(clock.now(), AT);
        hand.advance(Duration::from_secs(2));
        assert_eq!(
            (clock.now(), other.now()),
            (AT + 2_000_000, AT + 2_000_000),
            "one hand, one time"
        );
        hand.set(AT - 1);
        assert_eq!(clock.now(), AT - 1);
    }
}
