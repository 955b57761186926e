package notify

import (
	"context"
	"sync"
)

// queues runs jobs in order per source (a VRRP instance, a sync group, a
// real server, a virtual server's quorum), one job of a source at a time,
// sources independently of each other. Enqueueing never blocks: a slow
// script delays only the later notifications of its own source. Each
// source's queue is bounded; a job beyond the bound is dropped and
// counted, since holding an unbounded backlog behind a hung script helps
// no one.
type queues struct {
	ctx   context.Context // cancelled to kill running scripts at Close
	limit int

	mu      sync.Mutex
	sources map[string]*source
	closed  bool
	wg      sync.WaitGroup
}

type source struct {
	jobs    []func(context.Context)
	running bool
}

func newQueues(ctx context.Context, limit int) *queues {
	return &queues{ctx: ctx, limit: limit, sources: map[string]*source{}}
}

// add queues job for src; it reports false when the job was dropped (the
// source's queue is full or the queues are closed).
func (q *queues) add(src string, job func(context.Context)) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return false
	}
	s := q.sources[src]
	if s == nil {
		s = &source{}
		q.sources[src] = s
	}
	if len(s.jobs) >= q.limit {
		return false
	}
	s.jobs = append(s.jobs, job)
	if !s.running {
		s.running = true
		q.wg.Add(1)
		go q.drain(src, s)
	}
	return true
}

// drain runs the source's jobs until its queue is empty, then forgets the
// source (so removed instances leave nothing behind).
func (q *queues) drain(src string, s *source) {
	defer q.wg.Done()
	for {
		q.mu.Lock()
		if len(s.jobs) == 0 {
			s.running = false
			delete(q.sources, src)
			q.mu.Unlock()
			return
		}
		job := s.jobs[0]
		s.jobs[0] = nil
		s.jobs = s.jobs[1:]
		q.mu.Unlock()
		job(q.ctx)
	}
}

// close stops accepting jobs and waits until every queued job has run, or
// until ctx is done; it reports whether everything ran.
func (q *queues) close(ctx context.Context) bool {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-ctx.Done():
		return false
	}
}

// wait waits for the workers after the context of the jobs was cancelled.
func (q *queues) wait() { q.wg.Wait() }
