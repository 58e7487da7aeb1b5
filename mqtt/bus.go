// Package mqtt connects the gateway to devices that publish over MQTT:
// Shelly Gen1, emonhub, Tasmota, Z-Wave JS UI and Victron Venus OS.
//
// A Bus is where messages come from: either the gateway's own embedded
// broker (Broker, mochi-mqtt, for devices that can be pointed at the
// gateway) or a connection to a broker the site already runs (Client,
// paho.golang, MQTT 5 only: an emonPi's mosquitto, a Venus GX's FlashMQ).
// NewSubscriber turns a device profile into a device.Subscriber on a Bus;
// Simulator publishes what a simulated device would.
package mqtt

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Bus is a publish/subscribe connection to an MQTT broker.
type Bus interface {
	// Subscribe calls fn for every message whose topic matches filter (a
	// topic filter, + and # allowed) until unsubscribe is called. fn runs
	// on the bus's delivery goroutine: it must not block for long, nor keep
	// or modify payload after it returns.
	Subscribe(filter string, fn func(topic string, payload []byte)) (unsubscribe func(), err error)
	// Publish sends one message.
	Publish(ctx context.Context, topic string, payload []byte, retain bool) error
}

// ErrClosed is returned by a Bus that was closed.
var ErrClosed = errors.New("mqtt: bus closed")

// doner is a Bus that can tell it has ended for good (Broker, Client), so
// that a Subscriber returns instead of waiting forever.
type doner interface {
	Done() <-chan struct{}
}

// MatchTopic reports whether topic (a concrete topic name) matches filter
// under MQTT rules: + matches one level, a last # matches the rest
// including the parent level, and wildcards at the first level do not
// match topics that start with $.
func MatchTopic(filter, topic string) bool {
	if filter == "" || topic == "" {
		return false
	}
	if strings.HasPrefix(topic, "$") && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		t, trest, tmore := strings.Cut(topic, "/")
		switch {
		case f == "#":
			return !fmore
		case f != "+" && f != t:
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// "a/#" matches "a".
			return frest == "#"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}

// CheckFilter checks a topic filter: not empty, + and # only as whole
// levels, # only last, no NUL.
func CheckFilter(filter string) error {
	if filter == "" {
		return errors.New("empty topic filter")
	}
	if strings.ContainsRune(filter, 0) {
		return fmt.Errorf("topic filter %q holds a NUL character", filter)
	}
	if len(filter) > 65535 {
		return errors.New("topic filter longer than 65535 bytes")
	}
	levels := strings.Split(filter, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("topic filter %q: # must be the whole last level", filter)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("topic filter %q: + must be a whole level", filter)
		}
	}
	return nil
}

// CheckTopic checks a topic name to publish to: a valid filter without
// wildcards.
func CheckTopic(topic string) error {
	if err := CheckFilter(topic); err != nil {
		return err
	}
	if strings.ContainsAny(topic, "+#") {
		return fmt.Errorf("topic %q: a published topic takes no wildcards", topic)
	}
	return nil
}

// Expand fills the {name} placeholders of a topic pattern from vars and
// checks the result as a topic filter. A placeholder without a value is
// an error that names it.
func Expand(pattern string, vars map[string]string) (string, error) {
	var b strings.Builder
	rest := pattern
	for {
		i := strings.IndexByte(rest, '{')
		if i < 0 {
			if strings.IndexByte(rest, '}') >= 0 {
				return "", fmt.Errorf("topic %q: } without {", pattern)
			}
			b.WriteString(rest)
			break
		}
		if strings.IndexByte(rest[:i], '}') >= 0 {
			return "", fmt.Errorf("topic %q: } without {", pattern)
		}
		b.WriteString(rest[:i])
		j := strings.IndexByte(rest[i:], '}')
		if j < 0 {
			return "", fmt.Errorf("topic %q: { without }", pattern)
		}
		name := rest[i+1 : i+j]
		if name == "" {
			return "", fmt.Errorf("topic %q: empty placeholder {}", pattern)
		}
		v, ok := vars[name]
		if !ok {
			return "", fmt.Errorf("topic %q: var %q is not set (set vars.%s in the device's config)", pattern, name, name)
		}
		if v == "" {
			return "", fmt.Errorf("topic %q: var %q is empty", pattern, name)
		}
		b.WriteString(v)
		rest = rest[i+j+1:]
	}
	out := b.String()
	if err := CheckFilter(out); err != nil {
		return "", fmt.Errorf("topic %q with its vars filled: %w", pattern, err)
	}
	return out, nil
}

// mergeVars lays a device's vars over a profile's defaults.
func mergeVars(defaults, vars map[string]string) map[string]string {
	out := make(map[string]string, len(defaults)+len(vars))
	for k, v := range defaults {
		out[k] = v
	}
	for k, v := range vars {
		out[k] = v
	}
	return out
}

// excerpt quotes the start of a payload for a log line.
func excerpt(b []byte) string {
	const max = 96
	if len(b) > max {
		return fmt.Sprintf("%q…", b[:max])
	}
	return fmt.Sprintf("%q", b)
}
