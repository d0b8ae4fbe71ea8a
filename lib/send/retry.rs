//! qmail-send's retry schedule: a recipient born at `birth` is next tried at
//! `birth + (⌊√(now − birth)⌋ + c)²` seconds, with `c` = 10 for local and 20 for remote
//! deliveries, so attempts thin out quadratically.

/// The channel skip constants of qmail-send (local, remote).
pub const CHANNEL_SKIP: [i64; 2] = [10, 20];

/// ⌊√x⌋ for x ≥ 0, computed as qmail does (16 bits of result suffice for queue lifetimes).
pub fn squareroot(x: i64) -> i64 {
    let mut y: i64 = 0;
    let mut yy: i64 = 0;
    for j in (0..=15).rev() {
        let y21 = (y << (j + 1)) + (1 << (j + j));
        if y21 <= x - yy {
            y += 1 << j;
            yy += y21;
        }
    }
    y
}

/// The next attempt for a message born at `birth`, seen at `now`, on channel `c`
/// (0 local, 1 remote).
pub fn next_retry(birth: i64, now: i64, c: usize) -> i64 {
    let n = if birth > now {
        0
    } else {
        squareroot(now - birth)
    };
    let n = n + CHANNEL_SKIP.get(c).copied().unwrap_or(20);
    birth + n * n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_roots_are_floors() {
        for x in [0i64, 1, 2, 3, 4, 99, 100, 101, 604_800, 4_294_836_224] {
            let r = squareroot(x);
            assert!(r * r <= x && (r + 1) * (r + 1) > x, "{x} -> {r}");
        }
    }

    #[test]
    fn schedule_matches_qmails_table() {
        // Local: first retry 100 s after birth, remote: 400 s.
        assert_eq!(next_retry(1000, 1000, 0), 1100);
        assert_eq!(next_retry(1000, 1000, 1), 1400);
        // After an hour: (60 + 10)² = 4900 s after birth for local.
        assert_eq!(next_retry(0, 3600, 0), 4900);
        assert_eq!(next_retry(0, 3600, 1), 6400);
        // A birth in the future (clock step) counts as now.
        assert_eq!(next_retry(5000, 1000, 0), 5100);
    }
}
