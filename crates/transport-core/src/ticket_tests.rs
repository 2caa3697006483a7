//! Ticket round trips, the documented vector, and every malformed form.

use super::*;
use crate::Keypair;
use proptest::prelude::*;

fn peer() -> PeerId {
    Keypair::from_secret_bytes([7; 32]).peer_id()
}

fn ticket() -> Ticket {
    Ticket::new(
        peer(),
        vec![
            "quic://127.0.0.1:8766".parse().unwrap(),
            "tcp://127.0.0.1:8765".parse().unwrap(),
        ],
    )
    .unwrap()
}

#[test]
fn round_trips_in_uppercase_and_lowercase() {
    let t = ticket();
    let text = t.to_string();
    assert!(text.starts_with("BCT"));
    assert!(text
        .bytes()
        .all(|c| c.is_ascii_uppercase() || (b'2'..=b'7').contains(&c)));
    assert_eq!(text.parse::<Ticket>().unwrap(), t);
    assert_eq!(text.to_lowercase().parse::<Ticket>().unwrap(), t);
    assert_eq!(format!("  {text}\n").parse::<Ticket>().unwrap(), t);
}

#[test]
fn malformed_tickets_say_what_is_wrong() {
    let text = ticket().to_string();
    assert_eq!("XYZ".parse::<Ticket>(), Err(TicketError::Prefix));
    assert_eq!("".parse::<Ticket>(), Err(TicketError::Prefix));
    assert_eq!(
        format!("{}1{}", &text[..10], &text[11..]).parse::<Ticket>(),
        Err(TicketError::Character { position: 7 })
    );
    // Truncated: the checksum no longer matches, or too little is left.
    assert_eq!(
        text[..text.len() - 3].parse::<Ticket>(),
        Err(TicketError::Checksum)
    );
    assert_eq!(text[..20].parse::<Ticket>(), Err(TicketError::Truncated));
    // One character changed.
    let mut bytes = text.clone().into_bytes();
    bytes[30] = if bytes[30] == b'A' { b'B' } else { b'A' };
    let changed = String::from_utf8(bytes).unwrap();
    assert_eq!(changed.parse::<Ticket>(), Err(TicketError::Checksum));
    assert!(matches!(
        "BCT".repeat(3000).parse::<Ticket>(),
        Err(TicketError::TooLong(_))
    ));
    assert_eq!(Ticket::new(peer(), vec![]), Err(TicketError::RouteCount(0)));
}

#[test]
fn a_wrong_version_or_count_is_refused_even_with_a_good_checksum() {
    let mut raw = ticket().to_bytes();
    raw.truncate(raw.len() - CHECKSUM);
    let reseal = |mut b: Vec<u8>| {
        let sum = ring::digest::digest(&ring::digest::SHA256, &b);
        b.extend_from_slice(&sum.as_ref()[..CHECKSUM]);
        b
    };
    let mut v2 = raw.clone();
    v2[0] = 2;
    assert_eq!(
        Ticket::from_bytes(&reseal(v2)),
        Err(TicketError::Version(2))
    );
    let mut zero = raw.clone();
    zero[33] = 0;
    assert_eq!(
        Ticket::from_bytes(&reseal(zero)),
        Err(TicketError::RouteCount(0))
    );
    let mut trailing = raw.clone();
    trailing.push(0);
    assert_eq!(
        Ticket::from_bytes(&reseal(trailing)),
        Err(TicketError::Trailing)
    );
}

#[test]
fn the_document_vector_matches() {
    // docs/protocol.md section 12, the ```ticket-test-vectors block.
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/protocol.md");
    let text = std::fs::read_to_string(path).expect("docs/protocol.md");
    let block = text
        .split("```ticket-test-vectors")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a ticket-test-vectors block");
    let documented = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("ticket.example = "))
        .expect("ticket.example");
    assert_eq!(ticket().to_string(), documented.trim());
    assert_eq!(documented.trim().parse::<Ticket>().unwrap(), ticket());
}

proptest! {
    #[test]
    fn decoding_never_panics(text in "BCT[A-Z2-7]{0,200}") {
        let _ = text.parse::<Ticket>();
    }

    #[test]
    fn any_valid_ticket_round_trips(ports in proptest::collection::vec(1u16..65535, 1..16)) {
        let routes = ports.iter().map(|p| format!("tcp://10.0.0.1:{p}").parse().unwrap()).collect();
        let t = Ticket::new(peer(), routes).unwrap();
        prop_assert_eq!(t.to_string().parse::<Ticket>().unwrap(), t);
    }
}
