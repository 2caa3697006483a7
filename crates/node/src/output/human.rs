//! The readable form of each [`Event`] (one line), printed without `--json`.

use super::Event;

/// The first 8 hex digits of a peer id's text.
fn short(peer_id: &str) -> &str {
    &peer_id[..peer_id.len().min(8)]
}

/// The readable line of `event`.
pub(crate) fn human(event: &Event) -> String {
    match event {
        Event::Perf {
            transport,
            size,
            sent,
            delivered,
            megabytes_per_second,
            messages_per_second,
            rounds,
            rtt_p50_us,
            rtt_p99_us,
            ..
        } => format!(
            "{transport} {size} B: {delivered} of {sent} messages delivered, \
             {megabytes_per_second:.1} MB/s, {messages_per_second:.0} msg/s; {}",
            match (rtt_p50_us, rtt_p99_us) {
                (Some(p50), Some(p99)) =>
                    format!("{rounds} round trips: p50 {p50:.1} us, p99 {p99:.1} us"),
                _ => "no round trips (the remote does not echo)".to_string(),
            }
        ),
        Event::Listening { address, peer_id } => format!("listening on {address} as {peer_id}"),
        Event::Relaying { address, peer_id } => {
            format!("relaying mesh links on {address} as {peer_id} (reachable at mesh://{peer_id})")
        }
        Event::MeshLinked { address, peer_id } => {
            format!("[{}] mesh link up ({address}) {peer_id}", short(peer_id))
        }
        Event::Connected { peer_id, address } => {
            format!("[{}] connected ({address}) {peer_id}", short(peer_id))
        }
        Event::Message {
            peer_id,
            bytes,
            text,
        } => match text {
            Some(t) => format!("[{}] {bytes} bytes: {t:?}", short(peer_id)),
            None => format!("[{}] {bytes} bytes (binary)", short(peer_id)),
        },
        Event::Ticket { ticket, .. } => format!("ticket: {ticket}"),
        Event::Disconnected { peer_id, reason } => {
            format!("[{}] disconnected: {reason}", short(peer_id))
        }
        Event::Undelivered {
            peer_id,
            count,
            reason,
            ..
        } => format!(
            "[{}] {count} messages not delivered: {reason}",
            short(peer_id)
        ),
        Event::LinkFailed {
            peer_id,
            address,
            reason,
        } => format!(
            "[{}] connection {address} given up: {reason}",
            short(peer_id)
        ),
        Event::Error {
            peer_id,
            remote,
            error,
            kind,
            ..
        } => {
            let who = match (peer_id, remote) {
                (Some(p), Some(r)) => format!("[{}] {r}: ", short(p)),
                (Some(p), None) => format!("[{}] ", short(p)),
                (None, Some(r)) => format!("{r}: "),
                (None, None) => String::new(),
            };
            format!("error: {who}{error} ({kind})")
        }
        Event::Summary {
            messages,
            bytes,
            seconds,
            messages_per_second,
            megabytes_per_second,
            ..
        } => format!(
            "sent {messages} messages ({bytes} bytes) in {seconds:.3} s: \
             {messages_per_second:.0} messages/s, {megabytes_per_second:.2} MB/s"
        ),
        Event::Said {
            peer_id,
            name,
            text,
        } => format!("{} {name:>7}: {text}", short(peer_id)),
        Event::PlayerStats {
            name,
            peer_id,
            transport,
            sent,
            acknowledged,
            undelivered,
            received_by_table,
            route_changes,
            rtt_mean_ms,
            rtt_max_ms,
        } => format!(
            "  {name:<6} {} over {transport:<4} sent {sent} acknowledged {acknowledged} \
             undelivered {undelivered} received by the table {received_by_table}, \
             {route_changes} route changes, rtt mean {rtt_mean_ms:.1} ms max {rtt_max_ms:.1} ms",
            short(peer_id)
        ),
        Event::PeerDiscovered {
            peer_id,
            routes,
            source,
        } => format!(
            "[{}] discovered over {source}: {} ({peer_id})",
            short(peer_id),
            routes.join(" ")
        ),
        Event::PeerLost { peer_id, source } => {
            format!("[{}] no longer announced over {source}", short(peer_id))
        }
        Event::Delivered { peer_id, id, bytes } => {
            format!(
                "[{}] message {id} ({bytes} bytes) delivered",
                short(peer_id)
            )
        }
        Event::ListenerStats {
            address,
            accepted,
            refused_by_limit,
            failed_handshakes,
        } => format!(
            "  listener {address}: accepted {accepted}, refused by limit {refused_by_limit}, \
             failed handshakes {failed_handshakes}"
        ),
        Event::Metrics { address } => format!("metrics at {address}"),
        Event::ShuttingDown { reason } => format!("shutting down ({reason})"),
        Event::RouteChanged { peer_id, from, to } => format!(
            "[{}] route changed: {} -> {to}",
            short(peer_id),
            from.as_deref().unwrap_or("none")
        ),
        Event::Breaker {
            peer_id,
            route,
            state,
            retry_in_ms,
        } => match retry_in_ms {
            Some(ms) => format!(
                "[{}] breaker {route}: {state} (retry in {ms} ms)",
                short(peer_id)
            ),
            None => format!("[{}] breaker {route}: {state}", short(peer_id)),
        },
        Event::ListenerClosed { address } => format!("closed listener {address}"),
        Event::Lagged { missed } => format!("({missed} events dropped: output too slow)"),
        Event::TransportStats {
            transport,
            bytes_sent,
            bytes_received,
            packets_sent,
            packets_received,
            connections,
            errors,
        } => format!(
            "  {transport}: sent {packets_sent} transport messages / {bytes_sent} B, received \
             {packets_received} / {bytes_received} B, {connections} open, {errors} errors"
        ),
        Event::PeerStats {
            peer_id,
            delivered,
            duplicates,
            undelivered,
            bytes_sent,
            bytes_received,
            connections,
        } => format!(
            "  peer {}: delivered {delivered}, duplicates dropped {duplicates}, undelivered \
             {undelivered}, sent {bytes_sent} B, received {bytes_received} B, {connections} open",
            short(peer_id)
        ),
    }
}
