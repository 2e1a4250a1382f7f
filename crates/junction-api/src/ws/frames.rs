//! The few `graphql-transport-ws` frames the connection reads or writes itself.

use async_graphql::Request as GqlRequest;
use axum::extract::ws::{CloseFrame, Message};
use futures::SinkExt;

/// A client message, as far as the connection loop needs to know it.
pub(super) enum ClientMessage {
    Subscribe {
        id: String,
        request: Box<GqlRequest>,
    },
    Complete {
        id: String,
    },
    /// Anything else, for async-graphql's handler (which also reports what does not parse).
    Other,
}

pub(super) fn client_message(bytes: &[u8]) -> ClientMessage {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        id: Option<String>,
        payload: Option<serde_json::Value>,
    }
    let Ok(envelope) = serde_json::from_slice::<Envelope>(bytes) else {
        return ClientMessage::Other;
    };
    match (envelope.kind.as_str(), envelope.id) {
        ("subscribe", Some(id)) => match envelope.payload.map(serde_json::from_value) {
            Some(Ok(request)) => ClientMessage::Subscribe {
                id,
                request: Box::new(request),
            },
            _ => ClientMessage::Other,
        },
        ("complete", Some(id)) => ClientMessage::Complete { id },
        _ => ClientMessage::Other,
    }
}

/// `{"id":…,"type":"next","payload":…}` around a payload rendered once for its cohort.
pub(super) fn next_frame(id: &str, payload: &str) -> String {
    let id = serde_json::to_string(id).unwrap_or_else(|_| "\"\"".into());
    let mut frame = String::with_capacity(id.len() + payload.len() + 32);
    frame.push_str("{\"id\":");
    frame.push_str(&id);
    frame.push_str(",\"type\":\"next\",\"payload\":");
    frame.push_str(payload);
    frame.push('}');
    frame
}

pub(super) fn complete_frame(id: &str) -> String {
    serde_json::json!({"id": id, "type": "complete"}).to_string()
}

pub(super) async fn close<S>(sink: &mut S, code: u16, reason: &str) -> Result<(), axum::Error>
where
    S: futures::Sink<Message, Error = axum::Error> + Unpin,
{
    sink.send(Message::Close(Some(CloseFrame {
        code,
        reason: reason.to_string().into(),
    })))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_next_frame_is_json_with_the_payload_as_given() {
        let frame = next_frame("a\"b", r#"{"data":{"x":1}}"#);
        let parsed: serde_json::Value = serde_json::from_str(&frame).unwrap();
        assert_eq!(parsed["id"], "a\"b");
        assert_eq!(parsed["type"], "next");
        assert_eq!(parsed["payload"]["data"]["x"], 1);
    }

    #[test]
    fn only_subscribe_and_complete_with_an_id_are_read_here() {
        let sub = br#"{"type":"subscribe","id":"1","payload":{"query":"subscription { x }"}}"#;
        assert!(matches!(client_message(sub), ClientMessage::Subscribe { id, .. } if id == "1"));
        let done = br#"{"type":"complete","id":"1"}"#;
        assert!(matches!(client_message(done), ClientMessage::Complete { id } if id == "1"));
        for other in [
            &br#"{"type":"subscribe","payload":{"query":"{ x }"}}"#[..],
            br#"{"type":"ping"}"#,
            b"not json",
        ] {
            assert!(matches!(client_message(other), ClientMessage::Other));
        }
    }
}
