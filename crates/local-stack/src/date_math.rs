//! Date math in names (`<nightly-{now/d}>`, `<snap-{now-1d/d{yyyy.MM.dd}}>`), which the server
//! resolves before validating a snapshot name. Supports `now`, `+`/`-` offsets in
//! y M w d h H m s, rounding down to one of those units, and formats built from yyyy/uuuu, MM, dd,
//! HH, mm, ss (default `uuuu.MM.dd`); time zones other than UTC are not supported.

use time::{Date, Duration, Month, OffsetDateTime, Time};

use crate::errors::ApiError;

fn invalid(expression: &str) -> ApiError {
    ApiError::parse(format!("invalid dynamic name expression [{expression}]"))
}

/// Resolves one name; names not wrapped in `<...>` are returned unchanged.
pub(crate) fn resolve(name: &str, now: OffsetDateTime) -> Result<String, ApiError> {
    let Some(inner) = name
        .strip_prefix('<')
        .and_then(|rest| rest.strip_suffix('>'))
    else {
        return Ok(name.to_owned());
    };
    let mut out = String::new();
    let mut rest = inner;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        // The math part may carry its own `{format}`, so find the matching close brace.
        let mut depth = 1;
        let mut close = None;
        for (position, character) in after.char_indices() {
            match character {
                '{' => depth += 1,
                '}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(position);
                        break;
                    }
                }
                _ => {}
            }
        }
        let close = close.ok_or_else(|| invalid(name))?;
        let expression = &after[..close];
        let (math, format) = match expression.find('{') {
            Some(start) => (
                &expression[..start],
                expression[start + 1..]
                    .strip_suffix('}')
                    .ok_or_else(|| invalid(name))?,
            ),
            None => (expression, "uuuu.MM.dd"),
        };
        out.push_str(&format_moment(
            evaluate(math, now).ok_or_else(|| invalid(name))?,
            format,
        ));
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn evaluate(math: &str, now: OffsetDateTime) -> Option<OffsetDateTime> {
    let mut rest = math.strip_prefix("now")?;
    let mut moment = now;
    while !rest.is_empty() {
        let (operator, tail) = rest.split_at(1);
        match operator {
            "+" | "-" => {
                let digits = tail.chars().take_while(char::is_ascii_digit).count();
                let amount: i64 = tail[..digits].parse().ok()?;
                let unit = tail[digits..].chars().next()?;
                let amount = if operator == "-" { -amount } else { amount };
                moment = add(moment, amount, unit)?;
                rest = &tail[digits + 1..];
            }
            "/" => {
                let unit = tail.chars().next()?;
                moment = round_down(moment, unit)?;
                rest = &tail[1..];
            }
            _ => return None,
        }
    }
    Some(moment)
}

fn add(moment: OffsetDateTime, amount: i64, unit: char) -> Option<OffsetDateTime> {
    Some(match unit {
        'y' => moment
            .replace_year(moment.year() + i32::try_from(amount).ok()?)
            .ok()?,
        'M' => {
            let months =
                i64::from(moment.year()) * 12 + i64::from(u8::from(moment.month()) - 1) + amount;
            let month = Month::try_from(u8::try_from(months.rem_euclid(12) + 1).ok()?).ok()?;
            moment
                .replace_day(1)
                .ok()?
                .replace_year(i32::try_from(months.div_euclid(12)).ok()?)
                .ok()?
                .replace_month(month)
                .ok()?
        }
        'w' => moment + Duration::weeks(amount),
        'd' => moment + Duration::days(amount),
        'h' | 'H' => moment + Duration::hours(amount),
        'm' => moment + Duration::minutes(amount),
        's' => moment + Duration::seconds(amount),
        _ => return None,
    })
}

fn round_down(moment: OffsetDateTime, unit: char) -> Option<OffsetDateTime> {
    let date = moment.date();
    let (date, time) = match unit {
        'y' => (
            Date::from_calendar_date(date.year(), Month::January, 1).ok()?,
            Time::MIDNIGHT,
        ),
        'M' => (date.replace_day(1).ok()?, Time::MIDNIGHT),
        'w' => (
            date - Duration::days(i64::from(date.weekday().number_days_from_monday())),
            Time::MIDNIGHT,
        ),
        'd' => (date, Time::MIDNIGHT),
        'h' | 'H' => (date, Time::from_hms(moment.hour(), 0, 0).ok()?),
        'm' => (
            date,
            Time::from_hms(moment.hour(), moment.minute(), 0).ok()?,
        ),
        's' => (
            date,
            Time::from_hms(moment.hour(), moment.minute(), moment.second()).ok()?,
        ),
        _ => return None,
    };
    Some(date.with_time(time).assume_utc())
}

fn format_moment(moment: OffsetDateTime, format: &str) -> String {
    format
        .replace("yyyy", &format!("{:04}", moment.year()))
        .replace("uuuu", &format!("{:04}", moment.year()))
        .replace("MM", &format!("{:02}", u8::from(moment.month())))
        .replace("dd", &format!("{:02}", moment.day()))
        .replace("HH", &format!("{:02}", moment.hour()))
        .replace("mm", &format!("{:02}", moment.minute()))
        .replace("ss", &format!("{:02}", moment.second()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-03-01 13:45:10 UTC);

    #[test]
    fn resolves_like_the_server() {
        assert_eq!(resolve("plain", NOW).unwrap(), "plain");
        assert_eq!(
            resolve("<nightly-{now/d}>", NOW).unwrap(),
            "nightly-2026.03.01"
        );
        assert_eq!(
            resolve("<nightly-{now-1d/d}>", NOW).unwrap(),
            "nightly-2026.02.28"
        );
        assert_eq!(
            resolve("<h-{now/H{yyyyMMdd'T'HH}}>", NOW).unwrap(),
            "h-20260301'T'13"
        );
        assert_eq!(
            resolve("<m-{now-1M/M{yyyy.MM}}>", NOW).unwrap(),
            "m-2026.02"
        );
        assert_eq!(
            resolve("<x-{now/q}>", NOW).unwrap_err().error_type,
            "parse_exception"
        );
        assert!(resolve("<x-{now/d>", NOW).is_err());
    }
}
