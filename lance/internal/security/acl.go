package security

import (
	"errors"
	"fmt"
	"strings"

	"github.com/lance-go/lance/lance/internal/config"
)

// maxTopicLen is the longest topic name LWP allows.
const maxTopicLen = 255

// opSet is a set of operations, one bit per Op.
type opSet uint8

const opAll = opSet(1<<Produce | 1<<Consume | 1<<Admin | 1<<Describe)

// has reports whether the set allows op. Describe is allowed by any
// operation in the set.
func (s opSet) has(op Op) bool {
	if op == Describe {
		return s != 0
	}
	return op.valid() && s&(1<<op) != 0
}

// rule is a compiled config.ACLRule.
type rule struct {
	anyPrincipal bool
	principal    Principal
	anyTopic     bool
	exact        []string // exact topic names
	prefixes     []string // patterns "p*", stored without the "*"
	ops          opSet
}

func (r *rule) matchPrincipal(p Principal) bool {
	if r.anyPrincipal {
		return true
	}
	if p.Kind != r.principal.Kind {
		return false
	}
	if p.Kind == KindAnonymous {
		return true
	}
	return p.Name == r.principal.Name
}

// matchTopic is called only with valid topic names.
func (r *rule) matchTopic(topic string) bool {
	if r.anyTopic {
		return true
	}
	for _, t := range r.exact {
		if t == topic {
			return true
		}
	}
	for _, pre := range r.prefixes {
		if strings.HasPrefix(topic, pre) {
			return true
		}
	}
	return false
}

// compileRule checks one rule. Its errors start with the field name, for
// the caller to prefix with "acl.rules[i].".
func compileRule(c config.ACLRule) (rule, error) {
	var r rule
	p, anyP, err := parseRulePrincipal(c.Principal)
	if err != nil {
		return rule{}, fmt.Errorf("principal %q: %w", c.Principal, err)
	}
	r.anyPrincipal, r.principal = anyP, p
	if len(c.Topics) == 0 {
		return rule{}, errors.New("topics: empty; use [\"*\"] for every topic")
	}
	for i, t := range c.Topics {
		switch {
		case t == "*":
			r.anyTopic = true
		case strings.HasSuffix(t, "*"):
			pre := t[:len(t)-1]
			if !validTopicName(pre) {
				return rule{}, fmt.Errorf("topics[%d] %q: a pattern is a topic name followed by one \"*\"", i, t)
			}
			r.prefixes = append(r.prefixes, pre)
		default:
			if !validTopicName(t) {
				return rule{}, fmt.Errorf("topics[%d] %q: not a topic name (1 to %d of A-Z a-z 0-9 -), a prefix pattern ending in \"*\", or \"*\"", i, t, maxTopicLen)
			}
			r.exact = append(r.exact, t)
		}
	}
	if len(c.Operations) == 0 {
		return rule{}, errors.New("operations: empty; use [\"*\"] for every operation")
	}
	for i, o := range c.Operations {
		switch strings.ToLower(o) {
		case "produce":
			r.ops |= 1 << Produce
		case "consume":
			r.ops |= 1 << Consume
		case "admin":
			r.ops |= 1 << Admin
		case "describe":
			r.ops |= 1 << Describe
		case "*":
			r.ops = opAll
		default:
			return rule{}, fmt.Errorf("operations[%d] %q: want produce, consume, admin, describe or *", i, o)
		}
	}
	return r, nil
}

// parseRulePrincipal reads a rule's principal: "*", "anonymous",
// "CN=<common name>" or "token:<name>". Wildcards inside a name are
// refused rather than taken literally, since "CN=*" or "token:*" would
// almost certainly be meant as patterns.
func parseRulePrincipal(s string) (p Principal, anyP bool, err error) {
	switch {
	case s == "*":
		return Principal{}, true, nil
	case s == AnonymousName:
		return Anonymous, false, nil
	case strings.HasPrefix(s, cnPrefix):
		cn := s[len(cnPrefix):]
		if cn == "" {
			return Principal{}, false, errors.New("empty common name")
		}
		if strings.Contains(cn, "*") {
			return Principal{}, false, errors.New("wildcards are not supported in principals; use \"*\" alone for every principal")
		}
		return CertificatePrincipal(cn), false, nil
	case strings.HasPrefix(s, tokenPrefix):
		name := s[len(tokenPrefix):]
		if strings.Contains(name, "*") {
			return Principal{}, false, errors.New("wildcards are not supported in principals; use \"*\" alone for every principal")
		}
		if err := checkTokenName(name); err != nil {
			return Principal{}, false, err
		}
		return TokenPrincipal(name), false, nil
	}
	return Principal{}, false, errors.New("want \"CN=<common name>\", \"token:<name>\", \"anonymous\" or \"*\" (the prefixes are case-sensitive)")
}

// validTopicName reports whether s is a name LWP accepts for a topic: 1 to
// 255 bytes of A-Z a-z 0-9 and "-".
func validTopicName(s string) bool {
	if s == "" || len(s) > maxTopicLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}
