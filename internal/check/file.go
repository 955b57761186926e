package check

import (
	"context"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
)

// File is FILE_CHECK (a track_file watched by a real server). The file
// holds a number. With Weight 0 the checker is up when the number is 0 and
// down otherwise. With a non-zero Weight, the number times Weight (negated
// with Reverse) is added to the server's weight, and a product at or below
// -2^31 means down. An unreadable file or one without a number is down.
//
// keepalived rereads the file when inotify says it changed; vipd reads it
// every delay_loop (the Runner starts it at once, without warmup).
type File struct {
	Path    string
	Weight  int64
	Reverse bool
}

// Check reads the file once.
func (c *File) Check(context.Context) Result {
	b, err := os.ReadFile(c.Path)
	if err != nil {
		return down("%s", reason("track_file", err))
	}
	v, err := parseTrackValue(string(b))
	if err != nil {
		return down("track_file %s: %v", c.Path, err)
	}
	if c.Weight == 0 {
		if v != 0 {
			return down("track_file %s: value %d", c.Path, v)
		}
		return up("value 0")
	}
	w := v * c.Weight
	if c.Reverse {
		w = -w
	}
	if w <= math.MinInt32 || (v != 0 && w/v != c.Weight && w/v != -c.Weight) {
		return down("track_file %s: value %d x weight %d out of range", c.Path, v, c.Weight)
	}
	return Result{Up: true, Reason: fmt.Sprintf("value %d", v), Weight: Weight{Kind: WeightAdd, Value: w}}
}

// parseTrackValue reads the number at the start of a track file; an empty
// file reads as 0.
func parseTrackValue(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, nil
	}
	v, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || v > math.MaxInt32+1 || v < math.MinInt32 {
		return 0, fmt.Errorf("%q is not a number in [-2147483648, 2147483648]", truncate([]byte(f[0]), 20))
	}
	return v, nil
}
