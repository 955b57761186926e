package xdp

// idPool hands out the slots of a BPF array (service ids, destination
// slots), lowest free first.
type idPool struct {
	used []bool
}

func newIDPool(n int) idPool { return idPool{used: make([]bool, n)} }

func (p *idPool) get() (uint32, bool) {
	for i, u := range p.used {
		if !u {
			p.used[i] = true
			return uint32(i), true
		}
	}
	return 0, false
}

func (p *idPool) take(i uint32) {
	if int(i) < len(p.used) {
		p.used[i] = true
	}
}

func (p *idPool) free(i uint32) {
	if int(i) < len(p.used) {
		p.used[i] = false
	}
}
