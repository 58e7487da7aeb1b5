// Package kasa is the gateway's connector for TP-Link Kasa smart plugs that
// speak the legacy "IOT" protocol on TCP port 9999 (KP115 firmware 1.0.x,
// HS110): JSON commands, obfuscated with an XOR autokey and framed with a
// 4-byte big-endian length. It holds the wire codec, a Poller that sends a
// profile's commands and maps the replies, and a Simulator that answers
// them like a plug, for tests and `gridlink sim`.
//
// Newer Tapo and KLAP devices use an authenticated HTTP protocol instead
// and are not covered.
package kasa

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultPort is the plugs' TCP port.
const DefaultPort = 9999

// MaxFrame bounds a frame's payload. A plug's largest reply (sysinfo with
// its schedule rules) is a few kilobytes.
const MaxFrame = 64 << 10

// initialKey starts the autokey.
const initialKey = 171

// Encrypt obfuscates a payload: each byte is XOR-ed with the previous
// cipher byte, the first with 171.
func Encrypt(plain []byte) []byte {
	out := make([]byte, len(plain))
	key := byte(initialKey)
	for i, p := range plain {
		key ^= p
		out[i] = key
	}
	return out
}

// Decrypt reverses Encrypt.
func Decrypt(cipher []byte) []byte {
	out := make([]byte, len(cipher))
	key := byte(initialKey)
	for i, c := range cipher {
		out[i] = key ^ c
		key = c
	}
	return out
}

// WriteFrame writes one obfuscated, length-prefixed frame.
func WriteFrame(w io.Writer, plain []byte) error {
	if uint64(len(plain)) > math.MaxUint32 {
		return fmt.Errorf("frame of %d bytes is too long", len(plain))
	}
	buf := make([]byte, 4+len(plain))
	binary.BigEndian.PutUint32(buf, uint32(len(plain)))
	copy(buf[4:], Encrypt(plain))
	_, err := w.Write(buf)
	return err
}

// ReadFrame reads one frame and returns its plain payload. A length above
// limit is refused before anything is allocated for it.
func ReadFrame(r io.Reader, limit int) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("frame header cut short: %w", err)
		}
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if uint64(n) > uint64(max(limit, 0)) {
		return nil, fmt.Errorf("frame length %d exceeds the limit of %d bytes", n, limit)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, fmt.Errorf("frame of %d bytes cut short: %w", n, err)
	}
	return Decrypt(buf), nil
}
