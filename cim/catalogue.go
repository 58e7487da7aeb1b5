package cim

// Default returns the built-in catalogue: the quantities of CIM-NOTES.md §4
// with the phase as a field of its own (voltage on L1, not voltage_l1), plus
// what the pilot devices need beyond it (grid_state, electrosmog, ...).
//
// Each call builds a fresh catalogue; it takes microseconds, so build it
// once at startup and share it: a Catalogue is immutable and safe for
// concurrent use.
//
// Bounds are generous physical limits in the canonical unit, meant to
// refuse impossible values and unit mistakes (Pa sent as hPa), not to judge
// whether a device works. The ReadingType mRIDs were composed from the
// IEC 61968-9 enumerations (CIM-NOTES.md §2.2) and await review.
func Default() *Catalogue {
	var qs []Quantity
	qs = append(qs, electricalQuantities()...)
	qs = append(qs, storagePVAndEVQuantities()...)
	qs = append(qs, buildingQuantities()...)
	qs = append(qs, healthQuantities()...)
	for i := range qs {
		// State codes are 0..n-1; stating it as the range makes CheckValue
		// refuse out-of-range codes with the range message too.
		if n := len(qs[i].States); n > 0 {
			qs[i].Min, qs[i].Max = 0, float64(n-1)
		}
	}
	c, err := NewCatalogue(qs)
	if err != nil {
		// The table is static and TestDefaultCatalogue builds it, so this
		// is a programming error, not a runtime condition.
		panic("cim: built-in catalogue: " + err.Error())
	}
	return c
}

// Limits shared by several quantities, in canonical units.
const (
	maxGridPower  = 1e9  // W, var or VA: 1 GW, beyond any MV/LV site
	maxRegister   = 1e15 // Wh: 1 PWh, beyond any meter's register
	maxInterval   = 1e12 // Wh in one interval
	maxGridVolt   = 1e6  // V, covers MV measured on the primary side
	maxGridAmps   = 1e5  // A
	maxEVPower    = 1e7  // W, beyond megawatt charging
	maxDCVoltage  = 2000 // V, high-voltage battery strings
	maxPercent    = 100
	maxPercentTHD = 1000 // %: current THD of switched-mode loads exceeds 100 %
)
