package profile

import (
	"regexp"
	"slices"
)

var placeholderRE = regexp.MustCompile(`\{([a-z_][a-z0-9_]*)\}`)

// Placeholders lists the names of the {name} placeholders the profile's
// topics, paths and login body use, sorted, without the credentials
// ({username}, {password}) that come from the device's own fields. A
// device's Vars must give each one that the profile's MQTT vars do not.
func (p *Profile) Placeholders() []string {
	var texts []string
	if s := p.MQTT; s != nil {
		for _, t := range s.Topics {
			texts = append(texts, t.Topic)
		}
		texts = append(texts, s.Online)
		if s.Keepalive != nil {
			texts = append(texts, s.Keepalive.Topic, s.Keepalive.Payload)
		}
	}
	if s := p.HTTP; s != nil {
		for _, r := range s.Requests {
			texts = append(texts, r.Path)
		}
		if s.Login != nil {
			texts = append(texts, s.Login.Path, s.Login.Body)
		}
	}
	var names []string
	for _, t := range texts {
		for _, m := range placeholderRE.FindAllStringSubmatch(t, -1) {
			if m[1] != "username" && m[1] != "password" && !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
	}
	slices.Sort(names)
	return names
}
