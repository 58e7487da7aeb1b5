package loadgen

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestPost(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		w.Write([]byte(strings.ToUpper(string(b))))
	}))
	defer srv.Close()
	c, err := Dial(strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 3; i++ { // the connection is kept alive
		status, body, err := c.Post("/x", []string{"Authorization: Bearer k"}, []byte("hello"))
		if err != nil || status != 200 || string(body) != "HELLO" {
			t.Fatalf("post %d: %d %q %v", i, status, body, err)
		}
	}
	status, body, err := c.Post("/x", nil, []byte("hello"))
	if err != nil || status != 401 || !strings.Contains(string(body), "no key") {
		t.Fatalf("unauthorised post: %d %q %v", status, body, err)
	}
}
