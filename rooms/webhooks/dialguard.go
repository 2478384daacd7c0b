package webhooks

import "syscall"

// GuardDial is the dial guard of webhook deliveries, for other outbound requests to addresses
// an organisation chooses (its identity provider's key set, for one): as a net.Dialer Control
// function it refuses loopback, private, link-local and other non-public addresses after name
// resolution, with ErrForbiddenTarget.
func GuardDial(network, address string, c syscall.RawConn) error {
	return guardControl(network, address, c)
}
