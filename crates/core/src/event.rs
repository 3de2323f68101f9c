//! The three shapes an invocation arrives in, reduced to one: the function's own input plus the
//! time it was scheduled for.
//!
//! - a plain JSON object (console test event, Step Functions task input): its fields override
//!   the environment;
//! - an EventBridge "Scheduled Event" envelope: `time` is the scheduled time and `detail` (if
//!   any) holds the fields;
//! - EventBridge Scheduler input `{"scheduled_time": "..."}`, with or without other fields.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{Error, Result};

/// One invocation's input, whatever envelope it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation<T> {
    pub input: T,
    pub scheduled_time: Option<OffsetDateTime>,
}

const SCHEDULED_TIME: &str = "scheduled_time";

impl<T: DeserializeOwned> Invocation<T> {
    pub fn parse(event: Value) -> Result<Invocation<T>> {
        let (mut fields, envelope_time) = match event {
            Value::Null => (Map::new(), None),
            Value::Object(object) if is_eventbridge_envelope(&object) => {
                let envelope: EventBridgeEvent<Value> =
                    serde_json::from_value(Value::Object(object))
                        .map_err(|e| Error::config(format!("invalid EventBridge event: {e}")))?;
                let fields = match envelope.detail {
                    Value::Object(detail) => detail,
                    Value::Null => Map::new(),
                    other => {
                        return Err(Error::config(format!(
                            "the EventBridge event's detail must be an object, got {other}"
                        )))
                    }
                };
                let time = envelope.time.map(|t| {
                    OffsetDateTime::from_unix_timestamp(t.timestamp())
                        .expect("an EventBridge time is within OffsetDateTime's range")
                });
                (fields, time)
            }
            Value::Object(object) => (object, None),
            other => {
                return Err(Error::config(format!(
                    "the event must be a JSON object, got {other}"
                )))
            }
        };
        let field_time = match fields.remove(SCHEDULED_TIME) {
            None | Some(Value::Null) => None,
            Some(Value::String(text)) => Some(parse_time(&text)?),
            Some(other) => {
                return Err(Error::config(format!(
                    "scheduled_time must be an RFC 3339 string such as 2026-11-28T02:00:00Z, got {other}"
                )))
            }
        };
        let input = serde_json::from_value(Value::Object(fields))
            .map_err(|e| Error::config(format!("invalid event: {e}")))?;
        Ok(Invocation {
            input,
            scheduled_time: field_time.or(envelope_time),
        })
    }
}

fn is_eventbridge_envelope(object: &Map<String, Value>) -> bool {
    object.contains_key("detail-type") && object.contains_key("source")
}

fn parse_time(text: &str) -> Result<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        Error::config(format!(
            "scheduled_time {text:?} is not an RFC 3339 time such as 2026-11-28T02:00:00Z: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;
    use serde::Deserialize;
    use serde_json::json;
    use time::macros::datetime;

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(deny_unknown_fields)]
    struct Input {
        repository: Option<String>,
    }

    #[test]
    fn plain_object_fields_are_the_input() {
        let invocation = Invocation::<Input>::parse(json!({"repository": "r"})).unwrap();
        assert_eq!(invocation.input.repository.as_deref(), Some("r"));
        assert_eq!(invocation.scheduled_time, None);
        let empty = Invocation::<Input>::parse(json!({})).unwrap();
        assert_eq!(empty.input, Input::default());
    }

    #[test]
    fn scheduler_input_carries_the_scheduled_time() {
        let invocation =
            Invocation::<Input>::parse(json!({"scheduled_time": "2026-11-28T02:00:00Z"})).unwrap();
        assert_eq!(
            invocation.scheduled_time,
            Some(datetime!(2026-11-28 02:00:00 UTC))
        );
        let null_time = Invocation::<Input>::parse(json!({"scheduled_time": null})).unwrap();
        assert_eq!(null_time.scheduled_time, None);
    }

    #[test]
    fn eventbridge_scheduled_event_uses_its_time_and_detail() {
        let event = json!({
            "version": "0",
            "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-11-28T02:00:00Z",
            "region": "eu-west-1",
            "resources": ["arn:aws:events:eu-west-1:123456789012:rule/ossnap-nightly"],
            "detail": {}
        });
        let invocation = Invocation::<Input>::parse(event.clone()).unwrap();
        assert_eq!(
            invocation.scheduled_time,
            Some(datetime!(2026-11-28 02:00:00 UTC))
        );
        let mut with_detail = event;
        with_detail["detail"] = json!({"repository": "from-detail"});
        let invocation = Invocation::<Input>::parse(with_detail).unwrap();
        assert_eq!(invocation.input.repository.as_deref(), Some("from-detail"));
    }

    #[test]
    fn unknown_fields_are_named() {
        let error = Invocation::<Input>::parse(json!({"repo": "x"})).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ConfigError);
        assert!(error.message().contains("unknown field `repo`"), "{error}");
        assert!(error.message().contains("repository"), "{error}");
    }

    #[test]
    fn malformed_times_and_non_objects_are_config_errors() {
        let error = Invocation::<Input>::parse(json!({"scheduled_time": "yesterday"})).unwrap_err();
        assert!(error.message().contains("RFC 3339"), "{error}");
        let error = Invocation::<Input>::parse(json!({"scheduled_time": 5})).unwrap_err();
        assert!(error.message().contains("RFC 3339"), "{error}");
        let error = Invocation::<Input>::parse(json!("go")).unwrap_err();
        assert!(error.message().contains("JSON object"), "{error}");
    }
}
