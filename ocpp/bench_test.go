package ocpp

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/gridlink/gridlink/cim"
)

// BenchmarkMeterValues measures MeterValues handled per second through one
// real connection, each answered before the next is sent (as a charger
// does). It is the skeleton of the 10,000-charger benchmark of a later step.
func BenchmarkMeterValues(b *testing.B) {
	cs, err := New(Config{}, Deps{Registry: registered("bench"), Sink: discardSink{}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	addr, err := cs.Start("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer cs.Close()
	d := websocket.Dialer{Subprotocols: []string{"ocpp1.6"}}
	conn, _, err := d.DialContext(b.Context(), "ws://"+addr+"/ocpp/bench", basicAuth("bench", testPassword))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	base := time.Now().Add(-24 * time.Hour).UTC()
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ts := base.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		frame := fmt.Sprintf(`[2,"%d","MeterValues",{"connectorId":1,"meterValue":[{"timestamp":"%s","sampledValue":[`+
			`{"value":"%d","measurand":"Energy.Active.Import.Register","unit":"Wh"},`+
			`{"value":"11027.4","measurand":"Power.Active.Import","unit":"W"},`+
			`{"value":"15.5","measurand":"Current.Import","phase":"L1","unit":"A"},`+
			`{"value":"231.0","measurand":"Voltage","phase":"L1-N","unit":"V"}]}]}]`, i, ts, 1000000+i)
		if err := conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
			b.Fatal(err)
		}
		_, data, err := conn.ReadMessage()
		if err != nil {
			b.Fatal(err)
		}
		var arr []json.RawMessage
		if json.Unmarshal(data, &arr) != nil || string(arr[0]) != "3" {
			b.Fatalf("answer %s", data)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// discardSink keeps nothing, so that the benchmark
// measures the central system, not the test's store.
type discardSink struct{}

func (discardSink) Write(_ context.Context, _ string, _ []cim.Reading) error { return nil }
