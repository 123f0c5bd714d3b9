package renewal

import "time"

// ReissueFloor is the shortest time between two issuances for one Certificate whose spec and
// renew annotation did not change. It bounds what any accepted spec can cost: a renewBefore
// close to the lifetime, a lifetime Vault capped to seconds, or a Secret write that keeps
// failing after Vault signed, each costs at most one signature (and one CRL entry with
// OnReissue) a minute instead of dozens a second. A minute is far below the renewal interval of
// any real certificate, so it never delays a renewal that is due, and above Vault's 30-second
// notBefore back-dating, the usual cause of the loop with very short lifetimes.
const ReissueFloor = time.Minute

// NextIssuance returns the earliest time a certificate last issued at last may be issued again
// under floor: last plus floor, or the zero time (at once) when there was no last issuance.
func NextIssuance(last time.Time, floor time.Duration) time.Time {
	if last.IsZero() {
		return time.Time{}
	}
	return last.Add(floor)
}

// CeilSecond rounds t up to the next whole second. The API keeps times to the second, and an
// issuance time recorded there must not come out earlier than the issuance, or the floor would
// be up to a second short.
func CeilSecond(t time.Time) time.Time {
	if c := t.Truncate(time.Second); !c.Equal(t) {
		return c.Add(time.Second)
	}
	return t
}
