package ingest_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/ingest"
	"github.com/gridlink/gridlink/store"
)

func ExampleRun() {
	in := "asset,quantity,time,value,unit\n" +
		"house-01/meter,active_power,2026-11-27T10:00:00Z,1.5,kW\n" +
		"house-01/meter,active_power,2026-13-27T10:00:00Z,1.6,kW\n" +
		"house-01/door,door_window_state,1795773600000,open,\n"
	sink := func(_ context.Context, rs []cim.Reading) (store.WriteResult, error) {
		for _, r := range rs {
			fmt.Println(r.Asset, r.Quantity, cim.TimeOf(r.Time).Format(time.RFC3339), r.Value)
		}
		return store.WriteResult{Accepted: len(rs)}, nil
	}
	opts := ingest.Options{
		Catalogue: cim.Default(),
		Now:       func() time.Time { return time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC) },
	}
	rep, err := ingest.Run(context.Background(), ingest.NewCSV(strings.NewReader(in)), sink, opts)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("rows %d, accepted %d, rejected %d\n", rep.Rows, rep.Accepted, rep.Rejected)
	for _, e := range rep.Errors {
		fmt.Println(e.Error())
	}
	// Output:
	// house-01/meter active_power 2026-11-27T10:00:00Z 1500
	// house-01/door door_window_state 2026-11-27T10:00:00Z 1
	// rows 3, accepted 2, rejected 1
	// line 3: field "time": value "2026-13-27T10:00:00Z": not an RFC 3339 time or Unix milliseconds
}

// An HTTP handler for the real-time endpoint: open the body by its headers,
// run, and map errors to status codes.
func ExampleOpenRequest() {
	var write func(ctx context.Context, site string, rs []cim.Reading) (store.WriteResult, error) // e.g. store.Readings.Write
	catalogue := cim.Default()
	handler := func(w http.ResponseWriter, r *http.Request) {
		dec, err := ingest.OpenRequest(r, 8<<20)
		if err != nil {
			status := http.StatusBadRequest
			if errors.Is(err, ingest.ErrUnsupported) {
				status = http.StatusUnsupportedMediaType
			}
			http.Error(w, err.Error(), status)
			return
		}
		site := r.PathValue("site")
		sink := func(ctx context.Context, rs []cim.Reading) (store.WriteResult, error) {
			return write(ctx, site, rs)
		}
		rep, err := ingest.Run(r.Context(), dec, sink, ingest.Options{Catalogue: catalogue})
		var ie *ingest.InputError
		switch {
		case errors.Is(err, ingest.ErrTooLarge):
			http.Error(w, err.Error(), http.StatusRequestEntityTooLarge)
		case errors.As(err, &ie):
			http.Error(w, err.Error(), http.StatusBadRequest)
		case err != nil:
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		default:
			fmt.Fprintf(w, `{"accepted":%d,"rejected":%d}`, rep.Accepted, rep.Rejected)
		}
	}
	_ = handler
}
