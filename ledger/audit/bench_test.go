package audit

import (
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/gridlink/gridlink/cim"
)

// BenchmarkVerify verifies a log of 20 signed batches of 1000 readings
// (20,020 entries) over HTTP from a real platform: every leaf hash, the
// tree, 20 signatures, and the comparison with the stored readings.
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	for k := range 20 {
		rs := make([]cim.Reading, 1000)
		for i := range rs {
			n := k*1000 + i
			rs[i] = rd(meter, "energy_active_import", cim.PhaseTotal, e.base+int64(n)*1000, float64(n))
		}
		e.send(rs, e.gw)
	}
	e.checkpoint()
	c := e.client(e.read)
	for _, compare := range []bool{false, true} {
		name := "tree+signatures"
		if compare {
			name = "tree+signatures+readings"
		}
		b.Run(name, func(b *testing.B) {
			var rep *Report
			for b.Loop() {
				var err error
				rep, err = c.Verify(b.Context(), VerifyOptions{LogKey: e.logV, Signers: []note.Verifier{e.gwV}, CompareReadings: compare})
				if err != nil || len(rep.Problems) != 0 {
					b.Fatalf("%v %v", err, problems(rep))
				}
			}
			b.ReportMetric(float64(b.N)*float64(rep.Entries)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}
