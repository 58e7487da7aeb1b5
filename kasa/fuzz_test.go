package kasa

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// FuzzDecrypt checks that Decrypt undoes Encrypt and keeps lengths.
func FuzzDecrypt(f *testing.F) {
	f.Add([]byte(`{"system":{"get_sysinfo":{}}}`))
	if b, err := os.ReadFile("devices/kasa-kp115-realtime.json"); err == nil {
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		d := Decrypt(b)
		if len(d) != len(b) {
			t.Fatalf("Decrypt changed the length: %d to %d", len(b), len(d))
		}
		if !bytes.Equal(Encrypt(d), b) {
			t.Fatal("Encrypt(Decrypt(b)) != b")
		}
		if !bytes.Equal(Decrypt(Encrypt(b)), b) {
			t.Fatal("Decrypt(Encrypt(b)) != b")
		}
	})
}

// FuzzReadFrame reads arbitrary bytes as a frame: never a panic, never
// more than the limit, and a frame it accepts has the length its header
// says.
func FuzzReadFrame(f *testing.F) {
	f.Add(frame(`{"system":{"get_sysinfo":{}}}`))
	if b, err := os.ReadFile("devices/kasa-kp115-realtime.json"); err == nil {
		f.Add(frame(string(b)))
	}
	f.Add([]byte{0x80, 0, 0, 0})
	f.Add([]byte{0, 0, 0, 5, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		const limit = 1024
		got, err := ReadFrame(bytes.NewReader(b), limit)
		if err != nil {
			return
		}
		n := binary.BigEndian.Uint32(b)
		if len(got) > limit || uint32(len(got)) != n {
			t.Fatalf("payload of %d bytes for header %d", len(got), n)
		}
		if !bytes.Equal(Encrypt(got), b[4:4+n]) {
			t.Fatal("payload does not re-encrypt to the wire bytes")
		}
	})
}
