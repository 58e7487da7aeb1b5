package platform

import (
	_ "embed"
	"encoding/json"
	"net/http"

	"github.com/gridlink/gridlink/cim"
)

//go:embed openapi.json
var openAPIDoc []byte

// OpenAPI returns the OpenAPI 3.1 document of the API.
func OpenAPI() []byte { return append([]byte(nil), openAPIDoc...) }

func (s *Server) handleOpenAPI(w http.ResponseWriter, r *http.Request) {
	writeJSONBytes(w, http.StatusOK, openAPIDoc)
}

// quantityView is one catalogue entry as served by GET /api/v1/quantities.
type quantityView struct {
	Name        string   `json:"name"`
	Unit        string   `json:"unit"`
	Kind        string   `json:"kind"`
	Class       string   `json:"class"`
	Restricted  bool     `json:"restricted"`
	Phased      bool     `json:"phased"`
	Phases      []string `json:"phases"`
	Description string   `json:"description,omitempty"`
	OBIS        string   `json:"obis,omitempty"`
	ReadingType string   `json:"reading_type,omitempty"`
	SAREF       string   `json:"saref,omitempty"`
	UNCEFACT    string   `json:"uncefact,omitempty"`
	Min         *float64 `json:"min,omitempty"`
	Max         *float64 `json:"max,omitempty"`
	States      []string `json:"states,omitempty"`
}

// catalogueJSON renders the catalogue once; it never changes.
func catalogueJSON(c *cim.Catalogue) ([]byte, error) {
	qs := c.Quantities()
	out := struct {
		Quantities []quantityView `json:"quantities"`
	}{make([]quantityView, 0, len(qs))}
	for _, q := range qs {
		v := quantityView{
			Name: q.Name, Unit: q.Unit, Kind: string(q.Kind), Class: string(q.Class),
			Restricted: q.Restricted(), Phased: q.Phased, Description: q.Description,
			OBIS: q.OBIS, ReadingType: q.ReadingType, SAREF: q.SAREF, UNCEFACT: q.UNCEFACT,
			States: q.States,
		}
		for _, p := range q.Phases() {
			v.Phases = append(v.Phases, p.String())
		}
		if q.Min != 0 || q.Max != 0 {
			lo, hi := q.Min, q.Max
			v.Min, v.Max = &lo, &hi
		}
		out.Quantities = append(out.Quantities, v)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func (s *Server) handleQuantities(w http.ResponseWriter, r *http.Request) {
	writeJSONBytes(w, http.StatusOK, s.catJSON)
}
