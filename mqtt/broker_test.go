package mqtt

import (
	"context"
	"strings"
	"testing"
	"time"
)

// message is one delivery seen by a test subscription.
type message struct{ topic, payload string }

// collect subscribes to filter and returns the channel of deliveries.
func collect(t *testing.T, b Bus, filter string) <-chan message {
	t.Helper()
	ch := make(chan message, 64)
	u, err := b.Subscribe(filter, func(topic string, payload []byte) { ch <- message{topic, string(payload)} })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u)
	return ch
}

func recv(t *testing.T, ch <-chan message) message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(hang):
		t.Fatal("no message delivered")
	}
	return message{}
}

func startBroker(t *testing.T, cfg BrokerConfig) (*Broker, string) {
	t.Helper()
	b, err := NewBroker(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := b.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, addr
}

// TestBrokerAuthWithMosquittoPub: the embedded broker takes a real MQTT
// 3.1.1 and 5 client with the right password, and refuses wrong or
// missing credentials and publishes outside the user's ACL.
func TestBrokerAuthWithMosquittoPub(t *testing.T) {
	b, addr := startBroker(t, BrokerConfig{
		Listen: "127.0.0.1:0",
		Users:  map[string]string{"dev": "right", "gw": "gwpass"},
		ACL:    map[string][]string{"dev": {"shellies/#"}},
	})
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Start returned %s, want the bound port", addr)
	}
	got := collect(t, b, "#")

	for _, v := range []string{"mqttv311", "mqttv5"} {
		t.Run(v, func(t *testing.T) {
			topic := "shellies/shellyplug-s-376D1F/relay/0/power/" + v
			if out, err := pub(t, addr, "-V", v, "-u", "dev", "-P", "right", "-t", topic, "-m", "12.5"); err != nil {
				t.Fatalf("right password refused: %v: %s", err, out)
			}
			if m := recv(t, got); m.topic != topic || m.payload != "12.5" {
				t.Fatalf("delivered %+v", m)
			}
			if out, err := pub(t, addr, "-V", v, "-u", "dev", "-P", "wrong", "-t", topic, "-m", "1"); err == nil {
				t.Fatalf("wrong password accepted: %s", out)
			}
			if out, err := pub(t, addr, "-V", v, "-u", "nobody", "-P", "right", "-t", topic, "-m", "1"); err == nil {
				t.Fatalf("unknown user accepted: %s", out)
			}
			if out, err := pub(t, addr, "-V", v, "-t", topic, "-m", "1"); err == nil {
				t.Fatalf("anonymous client accepted: %s", out)
			}
			// Outside dev's ACL: refused. mosquitto_pub has finished with
			// it (QoS 1) before the next, allowed, publish starts, so
			// the next delivery would be the refused one had it passed.
			out, err := pub(t, addr, "-V", v, "-u", "dev", "-P", "right", "-t", "emon/emonpi/power1", "-m", "666")
			// MQTT 3.1.1 has no negative PUBACK: the broker disconnects
			// the client; MQTT 5 answers "not authorized".
			if v == "mqttv311" && err == nil {
				t.Errorf("publish outside the ACL: mosquitto_pub succeeded: %s", out)
			}
			if v == "mqttv5" && !strings.Contains(strings.ToLower(out), "not authorized") {
				t.Errorf("publish outside the ACL: mosquitto_pub says %q, want not authorized", out)
			}
			mustPub(t, addr, "gw", "gwpass", "emon/emonpi/power1", "39")
			if m := recv(t, got); m.payload != "39" {
				t.Fatalf("after a refused publish, delivered %+v; want only the allowed one", m)
			}
		})
	}
}

// TestBrokerConfig refuses configurations that cannot work.
func TestBrokerConfig(t *testing.T) {
	bad := []BrokerConfig{
		{Listen: "127.0.0.1:0"}, // nobody could connect
		{Listen: "127.0.0.1:0", Users: map[string]string{"a": "b"}, ACL: map[string][]string{"c": {"x"}}},
		{Listen: "127.0.0.1:0", Users: map[string]string{"a": "b"}, ACL: map[string][]string{"a": {"x/#/y"}}},
		{Listen: "127.0.0.1:0", Users: map[string]string{"": "b"}},
	}
	for _, c := range bad {
		if _, err := NewBroker(c, nil); err == nil {
			t.Errorf("NewBroker(%+v) accepted", c)
		}
	}
}

// TestBrokerAnonymous: with no users and AllowAnonymous, anyone may
// connect.
func TestBrokerAnonymous(t *testing.T) {
	b, addr := startBroker(t, BrokerConfig{Listen: "127.0.0.1:0", AllowAnonymous: true})
	got := collect(t, b, "tele/+/SENSOR")
	if out, err := pub(t, addr, "-t", "tele/tasmota_1/SENSOR", "-m", "{}"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if m := recv(t, got); m.topic != "tele/tasmota_1/SENSOR" {
		t.Fatalf("delivered %+v", m)
	}
}

// TestClientAgainstBroker: the paho client (MQTT 5) against the embedded
// broker: credentials, ACL refusal reported to the publisher, delivery
// both ways.
func TestClientAgainstBroker(t *testing.T) {
	b, addr := startBroker(t, BrokerConfig{
		Listen: "127.0.0.1:0",
		Users:  map[string]string{"sim": "simpass"},
		ACL:    map[string][]string{"sim": {"shellies/#"}},
	})
	ctx, cancel := context.WithTimeout(t.Context(), hang)
	defer cancel()
	if _, err := Dial(ctx, ClientConfig{URL: "tcp://" + addr, Username: "sim", Password: "nope"}, nil); err == nil ||
		!strings.Contains(err.Error(), "username or password") {
		t.Fatalf("Dial with a wrong password: %v", err)
	}
	c, err := Dial(ctx, ClientConfig{URL: "mqtt://" + addr, Username: "sim", Password: "simpass"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !c.Connected() {
		t.Fatal("not connected after Dial")
	}
	got := collect(t, b, "shellies/#")
	if err := c.Publish(ctx, "shellies/x/relay/0", []byte("on"), false); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, got); m.topic != "shellies/x/relay/0" || m.payload != "on" {
		t.Fatalf("delivered %+v", m)
	}
	if err := c.Publish(ctx, "emon/x/power1", []byte("1"), false); err == nil {
		t.Fatal("publish outside the ACL succeeded")
	}
	// Broker → client.
	fromBroker := collect(t, c, "R/+/keepalive")
	if err := b.Publish(ctx, "R/abc/keepalive", nil, false); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, fromBroker); m.topic != "R/abc/keepalive" {
		t.Fatalf("delivered %+v", m)
	}
	if err := c.Publish(ctx, "a/+/b", nil, false); err == nil {
		t.Fatal("publish to a wildcard topic accepted")
	}
	c.Close()
	if err := c.Publish(ctx, "shellies/x", nil, false); err == nil {
		t.Fatal("publish after Close accepted")
	}
	select {
	case <-c.Done():
	case <-time.After(hang):
		t.Fatal("Done not closed after Close")
	}
}
