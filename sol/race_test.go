//go:build race

package sol

// raceEnabled: the race detector slows code several times over, so CPU
// budgets are not checked under it.
const raceEnabled = true
