package fault

import (
	"context"
	"time"
)

// slowClients are clients holding connections mid-request (a request line
// and headers trickled a byte at a time, never finished) across WINCH and
// QUIT: how long the old set lingers, and why.
type slowClients struct{}

// slowClientCount is how many such clients the load adds.
const slowClientCount = 4

func (slowClients) Name() string { return "slow-clients" }
func (slowClients) What() string {
	return "4 clients trickling an unfinished request, a byte a second, on the old set across WINCH and QUIT"
}
func (slowClients) At() string               { return "install-new-binary" }
func (slowClients) Needs() Needs             { return Needs{SlowClients: slowClientCount} }
func (slowClients) HealAfter() time.Duration { return 0 }
func (slowClients) Inject(context.Context, Target) (string, error) {
	return "4 clients trickling requests on the workers that accept now", nil
}
func (slowClients) Heal(context.Context, Target) (string, error) {
	return "the clients stop with the load", nil
}

func (slowClients) Expect(scenario string) Expectation {
	return Expectation{Final: finalOf(scenario),
		Why: "a worker that is shutting down keeps a connection whose request header is still arriving: the old set lingers until " +
			"client_header_timeout (60 s by default) closes the slow clients, and QUIT to the old master waited 55 s for it — " +
			"worker_shutdown_timeout (20 s in the default config) did not cut them: it does not close a connection mid-header. " +
			"Nothing is lost"}
}
