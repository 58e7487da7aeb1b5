package cim

import (
	"strconv"
	"strings"
)

// PhaseOBIS returns the IEC 62056-61 code of q on phase p, or "" where none
// exists. The total's code is q.OBIS. For an electricity code 1-b:C.D.E with
// C in 1..20, phase Lk's C is C+20k (1.8.0 → 21.8.0, 41.8.0, 61.8.0; 32.7.0
// is voltage L1); the neutral has 91 (current) and 92 (voltage). There are
// no codes for the line-to-line voltages.
func (q Quantity) PhaseOBIS(p Phase) string {
	if p == PhaseTotal {
		return q.OBIS
	}
	if !q.AllowsPhase(p) {
		return ""
	}
	prefix, rest, ok := strings.Cut(q.OBIS, ":")
	if !ok || !strings.HasPrefix(prefix, "1-") {
		return ""
	}
	cs, de, ok := strings.Cut(rest, ".")
	if !ok {
		return ""
	}
	c, err := strconv.Atoi(cs)
	if err != nil || c < 1 || c > 20 {
		return ""
	}
	switch p {
	case PhaseL1:
		c += 20
	case PhaseL2:
		c += 40
	case PhaseL3:
		c += 60
	case PhaseN:
		switch c {
		case 11: // current, any phase
			c = 91
		case 12: // voltage, any phase
			c = 92
		default:
			return ""
		}
	default:
		return ""
	}
	return prefix + ":" + strconv.Itoa(c) + "." + de
}
