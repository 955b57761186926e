package check

import "context"

// TCP is TCP_CHECK: the server is up when a TCP connection to it opens
// within connect_timeout. The connection is closed at once.
type TCP struct {
	Endpoint
}

// Check makes one connection attempt.
func (c *TCP) Check(ctx context.Context) Result {
	ctx, cancel := c.attemptContext(ctx)
	defer cancel()
	conn, err := c.dialTCP(ctx)
	if err != nil {
		return down("%s", reason("connect", err))
	}
	_ = conn.Close()
	return up("connected")
}
