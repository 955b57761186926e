//go:build race

package lab

// raceEnabled: this test binary runs with the race detector, so the
// programs it builds (Binary) get it too, and a data race in a daemon the
// test starts is found as well as one in the test process.
const raceEnabled = true
