//go:build !race

package sol

const raceEnabled = false
