package platform

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gridlink/gridlink/cim"
	"github.com/gridlink/gridlink/platform/auth"
	"github.com/gridlink/gridlink/store"
)

// handleStream serves GET /api/v1/stream: the readings of a site as
// Server-Sent Events (https://html.spec.whatwg.org/multipage/server-sent-events.html),
// as they are stored.
//
//	event: reading
//	data: {"site":"bristol","asset":"house-01/meter","quantity":"active_power","phase":"total","unit":"W","time":1700000000000,"value":1500}
//
// A subscriber too slow to keep up loses readings and is told how many:
//
//	event: dropped
//	data: {"dropped":12}
//
// A heartbeat event ({"time": ms}) comes every Config.Heartbeat.
func (s *Server) handleStream(w http.ResponseWriter, r *http.Request, p auth.Principal) {
	v := r.URL.Query()
	err := onlyParams(v, "site", "asset", "quantity", "key") // key: see authedStream
	var site string
	if err == nil {
		site, err = siteParam(v)
	}
	if err == nil {
		site, err = readSite(site, p)
	}
	asset, quantity := v.Get("asset"), v.Get("quantity")
	if err == nil && quantity != "" {
		if _, ok := s.cat.Lookup(quantity); !ok {
			err = badParam("quantity", clip(quantity), "unknown quantity (GET /api/v1/quantities lists them)")
		} else {
			err = s.checkRestricted(p, quantity)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	rc := http.NewResponseController(w)
	_ = rc.SetWriteDeadline(time.Time{}) // a stream outlives the server's write timeout
	sub := s.hub.Subscribe(site, s.streamBuf)
	defer sub.Close()

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	buf := make([]byte, 0, 4096)
	buf = append(buf, ": gridlink live feed of site "...)
	buf = append(buf, site...)
	buf = append(buf, "\nretry: 3000\n\n"...)
	send := func() bool {
		if _, err := w.Write(buf); err != nil {
			return false
		}
		buf = buf[:0]
		return rc.Flush() == nil
	}
	if !send() {
		return
	}
	tick := time.NewTicker(s.heartbeat)
	defer tick.Stop()
	units := make(map[string]string)
	event := func(rd cim.Reading) {
		if asset != "" && rd.Asset != asset || quantity != "" && rd.Quantity != quantity {
			return
		}
		unit, ok := units[rd.Quantity]
		if !ok {
			var vis bool
			if unit, vis = s.visible(p, rd.Quantity); !vis {
				unit = "\x00" // hidden
			}
			units[rd.Quantity] = unit
		}
		if unit == "\x00" {
			return
		}
		buf = append(buf, "event: reading\ndata: "...)
		buf = appendReadingJSON(buf, store.Series{Site: site, SeriesKey: rd.SeriesKey}, unit, rd.Point)
		buf = append(buf, "\n\n"...)
	}
	dropped := func() {
		if n := sub.TakeDropped(); n > 0 {
			buf = append(buf, "event: dropped\ndata: {\"dropped\":"...)
			buf = strconv.AppendUint(buf, n, 10)
			buf = append(buf, "}\n\n"...)
		}
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case rd := <-sub.C():
			event(rd)
			for more := true; more && len(buf) < flushBytes; {
				select {
				case rd := <-sub.C():
					event(rd)
				default:
					more = false
				}
			}
			dropped()
		case <-sub.Lost():
			dropped()
		case <-tick.C:
			buf = append(buf, "event: heartbeat\ndata: {\"time\":"...)
			buf = strconv.AppendInt(buf, s.now().UnixMilli(), 10)
			buf = append(buf, "}\n\n"...)
		}
		if len(buf) > 0 && !send() {
			return
		}
	}
}
