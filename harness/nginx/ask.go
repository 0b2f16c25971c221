package nginx

import (
	"context"
	"fmt"
	"time"

	"github.com/releng-tools/nginx-upgrade-harness/harness"
	"github.com/releng-tools/nginx-upgrade-harness/loadgen/agent"
)

// WithAgent makes the node's own questions to nginx — is it serving, what
// does a request get — go through a load agent in the container's network
// namespace (the static build of the tool at binary, harness.StartAgent)
// instead of the ports published on the engine host's 127.0.0.1, which a
// process in another network namespace or on another host cannot reach.
// The run's load may use the same agent (Node.Agent). Unless always is set,
// the agent starts only when this process cannot enter the container's
// namespace itself (Node.NetnsReachable).
func WithAgent(binary string, always bool) NodeOption {
	return func(c *nodeConfig) { c.agent, c.agentAlways = binary, always }
}

// agentCallTimeout bounds an agent's answer to one call.
const agentCallTimeout = 30 * time.Second

func (n *Node) startAgent(ctx context.Context, binary string) error {
	ag, err := harness.StartAgent(ctx, n.pool, binary, n.res.Container.ID)
	if err != nil {
		return err
	}
	c := agent.NewClient(ag.Stdin, ag.Stdout, "", agentCallTimeout)
	if err := c.Sync(); err != nil {
		ag.Close()
		return err
	}
	n.agentBox, n.agent = ag, c
	return nil
}

// Agent is the node's load agent (nil without WithAgent).
func (n *Node) Agent() *agent.Client { return n.agent }

// Ask is one request to nginx on port (127.0.0.1 inside the container):
// through the node's agent when it has one, else to the port published on
// this host. Redirects are not followed; the body is read up to 1 MiB.
type Ask struct {
	Method string
	Port   int // default the main port
	Path   string
	Host   string
	Body   []byte
	TLS    bool // https, the certificate not verified
	HTTP2  bool // HTTP/2 over TLS (ALPN h2)
	// Timeout bounds it (default 5 s).
	Timeout time.Duration
}

// Answer is what nginx answered an Ask.
type Answer = agent.Answer

// Ask sends a; the error names a request that got no answer.
func (n *Node) Ask(ctx context.Context, a Ask) (*Answer, error) {
	if a.Port == 0 {
		a.Port = n.mainPort
		if a.TLS || a.HTTP2 {
			a.Port = n.tlsPort
		}
	}
	if a.Timeout == 0 {
		a.Timeout = 5 * time.Second
	}
	scheme := "http"
	if a.TLS || a.HTTP2 {
		scheme = "https"
	}
	g := agent.Get{Method: a.Method, Host: a.Host, Body: a.Body, HTTP2: a.HTTP2, TimeoutMs: a.Timeout.Milliseconds()}
	if n.agent != nil {
		g.URL = fmt.Sprintf("%s://127.0.0.1:%d%s", scheme, a.Port, a.Path)
		return n.agent.Get(g)
	}
	addr, ok := n.hostAddrs[a.Port]
	if !ok {
		return nil, fmt.Errorf("port %d is not published", a.Port)
	}
	g.URL = scheme + "://" + addr + a.Path
	return agent.Send(ctx, g)
}
