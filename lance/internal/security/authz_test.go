package security

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lance-go/lance/lance/internal/config"
)

var allOps = []Op{Produce, Consume, Admin, Describe}

func TestAuthGate(t *testing.T) {
	cases := []struct {
		name      string
		auth      config.Auth
		needsAuth map[Op]bool
	}{
		{"auth disabled", config.Auth{}, map[Op]bool{}},
		{"auth disabled, write_only ignored", config.Auth{WriteOnly: true}, map[Op]bool{}},
		{"auth enabled", config.Auth{Enabled: true, Tokens: []string{"t"}},
			map[Op]bool{Produce: true, Consume: true, Admin: true, Describe: true}},
		{"auth enabled, write_only", config.Auth{Enabled: true, WriteOnly: true, Tokens: []string{"t"}},
			map[Op]bool{Produce: true, Admin: true}},
	}
	for _, tc := range cases {
		a, err := NewAuthorizer(tc.auth, config.ACL{})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range allOps {
			if got := a.NeedsAuth(op); got != tc.needsAuth[op] {
				t.Errorf("%s: NeedsAuth(%v) = %v", tc.name, op, got)
			}
			for _, p := range []Principal{Anonymous, CertificatePrincipal("alice")} {
				err := a.Allow(p, false, op, "orders")
				if tc.needsAuth[op] {
					if err != ErrAuthRequired || err.Error() != "Authentication required" {
						t.Errorf("%s: unauthenticated %v %v: %v, want ErrAuthRequired", tc.name, p, op, err)
					}
				} else if err != nil {
					t.Errorf("%s: unauthenticated %v %v: %v, want nil", tc.name, p, op, err)
				}
				if err := a.Allow(p, true, op, "orders"); err != nil {
					t.Errorf("%s: authenticated %v %v: %v", tc.name, p, op, err)
				}
			}
			if got := a.CheckAuth(false, op); (got != nil) != tc.needsAuth[op] {
				t.Errorf("%s: CheckAuth(false, %v) = %v", tc.name, op, got)
			}
			if got := a.CheckAuth(true, op); got != nil {
				t.Errorf("%s: CheckAuth(true, %v) = %v", tc.name, op, got)
			}
		}
	}
}

func TestAuthenticate(t *testing.T) {
	alice := CertificatePrincipal("alice")
	a, err := NewAuthorizer(config.Auth{Enabled: true, Tokens: []string{"ci:s3cret", "other:0ther"}}, config.ACL{})
	if err != nil {
		t.Fatal(err)
	}
	check := func(cur Principal, token string, want Principal, wantOK bool) {
		t.Helper()
		got, ok := a.Authenticate(cur, token)
		if got != want || ok != wantOK {
			t.Errorf("Authenticate(%v, %q) = %v, %v; want %v, %v", cur, token, got, ok, want, wantOK)
		}
	}
	check(Anonymous, "s3cret", TokenPrincipal("ci"), true)
	check(alice, "s3cret", TokenPrincipal("ci"), true) // the token overrides the certificate
	check(alice, "wrong", alice, false)
	check(alice, "", alice, false)
	check(TokenPrincipal("ci"), "wrong", TokenPrincipal("ci"), false) // a failed retry changes nothing
	check(TokenPrincipal("ci"), "0ther", TokenPrincipal("other"), true)

	off, err := NewAuthorizer(config.Auth{Tokens: []string{"ci:s3cret"}, TokenFile: "/does/not/matter"}, config.ACL{})
	if err != nil {
		t.Fatalf("disabled auth must not read its settings: %v", err)
	}
	for _, tok := range []string{"anything", "s3cret"} {
		if got, ok := off.Authenticate(alice, tok); !ok || got != alice {
			t.Errorf("auth disabled: Authenticate(%q) = %v, %v; want alice, true", tok, got, ok)
		}
	}
	if _, ok := off.Authenticate(alice, ""); ok {
		t.Error("auth disabled: the empty token was accepted")
	}
}

// matrixRules is the ACL of TestACLMatrix.
var matrixRules = []config.ACLRule{
	{Principal: "CN=alice", Topics: []string{"orders-*"}, Operations: []string{"produce"}},
	{Principal: "CN=bob", Topics: []string{"orders"}, Operations: []string{"consume"}},
	{Principal: "token:ci", Topics: []string{"*"}, Operations: []string{"admin"}},
	{Principal: "anonymous", Topics: []string{"public"}, Operations: []string{"consume"}},
	{Principal: "*", Topics: []string{"metrics-*", "status"}, Operations: []string{"consume"}},
	{Principal: "token:reader", Topics: []string{"orders*"}, Operations: []string{"describe"}},
	{Principal: "token:ops", Topics: []string{"Audit"}, Operations: []string{"*"}},
	{Principal: "CN=carol", Topics: []string{"orders-eu"}, Operations: []string{"Produce", "CONSUME"}},
}

func TestACLMatrix(t *testing.T) {
	a, err := NewAuthorizer(config.Auth{}, config.ACL{Enabled: true, Rules: matrixRules})
	if err != nil {
		t.Fatal(err)
	}
	long255 := "orders-" + strings.Repeat("a", 248)
	long256 := "orders-" + strings.Repeat("a", 249)
	valid := []string{"orders", "orders-", "orders-eu", "orders-EU", "Orders-eu", "ORDERS", "order", "ordersx",
		"x-orders-eu", "public", "Public", "public-x", "metrics", "metrics-", "metrics-cpu", "status", "status-x",
		"Audit", "audit", "AUDIT", long255}
	invalid := []string{"", "orders-eu ", " orders-eu", "orders-eu\x00", "orders-eu\n", "orders-eu/../x",
		"orders-\u00e9", "orders-*", "*", "orders-eu.x", "orders_eu", "public\x00", "status ", "metrics-cpu\t", long256}
	topics := append(append([]string{}, valid...), invalid...)

	type key struct {
		p     Principal
		op    Op
		topic string
	}
	want := map[key]bool{}
	grant := func(p Principal, ops []Op, topics ...string) {
		for _, op := range ops {
			for _, tp := range topics {
				want[key{p, op, tp}] = true
			}
		}
	}
	alice := CertificatePrincipal("alice")
	bob := CertificatePrincipal("bob")
	carol := CertificatePrincipal("carol")
	principals := []Principal{
		Anonymous, {}, alice, bob, carol,
		CertificatePrincipal("Alice"), CertificatePrincipal("alice "), CertificatePrincipal("alice2"),
		CertificatePrincipal(""), CertificatePrincipal("*"),
		TokenPrincipal("ci"), TokenPrincipal("CI"), TokenPrincipal("reader"), TokenPrincipal("ops"), TokenPrincipal("other"),
		// principals a buggy caller could build: the kind must match too
		{Name: "CN=alice", Kind: KindToken},
		{Name: "token:ci", Kind: KindCertificate},
		{Name: "anonymous", Kind: KindCertificate},
		{Name: "CN=alice", Kind: KindAnonymous},
		{Name: "CN=alice", Kind: Kind(9)},
	}
	pd := []Op{Produce, Describe}
	cd := []Op{Consume, Describe}
	ad := []Op{Admin, Describe}
	for _, p := range principals {
		grant(p, cd, "metrics-", "metrics-cpu", "status") // rule "*"
	}
	grant(alice, pd, "orders-", "orders-eu", "orders-EU", long255)
	grant(bob, cd, "orders")
	grant(carol, []Op{Produce, Consume, Describe}, "orders-eu")
	grant(TokenPrincipal("ci"), ad, valid...)
	grant(Anonymous, cd, "public")
	grant(Principal{}, cd, "public")
	grant(Principal{Name: "CN=alice", Kind: KindAnonymous}, cd, "public")
	grant(TokenPrincipal("reader"), []Op{Describe}, "orders", "orders-", "orders-eu", "orders-EU", "ordersx", long255)
	grant(TokenPrincipal("ops"), allOps, "Audit")

	var unexpectedAllow, unexpectedDeny, checked int
	for _, p := range principals {
		for _, op := range append(allOps, Op(0), Op(5)) {
			for _, tp := range topics {
				checked++
				err := a.Allow(p, true, op, tp)
				w := want[key{p, op, tp}]
				switch {
				case err == nil && !w:
					unexpectedAllow++
					t.Errorf("ALLOWED: %#v %v %q", p, op, tp)
				case err != nil && w:
					unexpectedDeny++
					t.Errorf("denied: %#v %v %q: %v", p, op, tp, err)
				case err != nil && !errors.Is(err, ErrDenied):
					t.Errorf("%#v %v %q: error %v is not ErrDenied", p, op, tp, err)
				}
				if op == Describe {
					if vis := a.Visible(p, tp); vis != w {
						t.Errorf("Visible(%#v, %q) = %v, want %v", p, tp, vis, w)
					}
				}
			}
		}
	}
	if unexpectedAllow != 0 || unexpectedDeny != 0 {
		t.Errorf("%d checks: %d unexpected allows, %d unexpected denies", checked, unexpectedAllow, unexpectedDeny)
	}
	t.Logf("%d checks, %d allowed by the oracle", checked, len(want))
}

func TestACLDefaults(t *testing.T) {
	p := CertificatePrincipal("alice")
	for _, def := range []string{"", "deny", "DENY"} {
		a, err := NewAuthorizer(config.Auth{}, config.ACL{Enabled: true, Default: def})
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range allOps {
			if err := a.Allow(p, true, op, "orders"); !errors.Is(err, ErrDenied) {
				t.Errorf("default %q, no rules: %v got %v", def, op, err)
			}
		}
		if a.Visible(p, "orders") {
			t.Errorf("default %q: topic visible", def)
		}
	}
	a, err := NewAuthorizer(config.Auth{}, config.ACL{Enabled: true, Default: "allow"})
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range allOps {
		if err := a.Allow(Anonymous, false, op, "orders"); err != nil {
			t.Errorf("default allow: %v got %v", op, err)
		}
	}
	// Disabled: rules are not read, everything passes.
	off, err := NewAuthorizer(config.Auth{}, config.ACL{Default: "bogus", Rules: []config.ACLRule{{Principal: "nonsense"}}})
	if err != nil {
		t.Fatalf("disabled ACL must not read its rules: %v", err)
	}
	if off.ACLEnabled() || off.AuthEnabled() {
		t.Error("reported as enabled")
	}
	for _, op := range allOps {
		if err := off.Allow(Anonymous, false, op, "anything"); err != nil || !off.Visible(Anonymous, "anything") {
			t.Errorf("disabled ACL: %v got %v", op, err)
		}
	}
	if err := off.Allow(Anonymous, true, Op(0), "orders"); !errors.Is(err, ErrDenied) {
		t.Errorf("unknown op passed: %v", err)
	}
}

func TestAuthBeforeACL(t *testing.T) {
	a, err := NewAuthorizer(config.Auth{Enabled: true, WriteOnly: true, Tokens: []string{"ci:x"}},
		config.ACL{Enabled: true, Rules: []config.ACLRule{
			{Principal: "*", Topics: []string{"public"}, Operations: []string{"consume"}},
			{Principal: "token:ci", Topics: []string{"*"}, Operations: []string{"*"}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Allow(Anonymous, false, Produce, "secret"); err != ErrAuthRequired {
		t.Errorf("produce unauthenticated: %v", err)
	}
	if err := a.Allow(Anonymous, false, Consume, "public"); err != nil {
		t.Errorf("write_only consume on a public topic: %v", err)
	}
	if err := a.Allow(Anonymous, false, Consume, "secret"); !errors.Is(err, ErrDenied) {
		t.Errorf("write_only consume on a private topic: %v", err)
	}
	p, ok := a.Authenticate(Anonymous, "x")
	if !ok {
		t.Fatal("token refused")
	}
	for _, op := range allOps {
		if err := a.Allow(p, true, op, "secret"); err != nil {
			t.Errorf("token:ci %v: %v", op, err)
		}
	}
}

func TestDeniedText(t *testing.T) {
	a, err := NewAuthorizer(config.Auth{}, config.ACL{Enabled: true, Rules: []config.ACLRule{
		{Principal: "CN=alice", Topics: []string{"orders"}, Operations: []string{"consume"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	alice := CertificatePrincipal("alice")
	cases := []struct {
		p     Principal
		op    Op
		topic string
		want  string
	}{
		{alice, Produce, "orders", "Access denied: CN=alice may not produce to topic 'orders'"},
		{alice, Admin, "orders", "Access denied: CN=alice may not administer topic 'orders'"},
		{alice, Consume, "payroll", "Access denied: CN=alice may not consume from this topic"},
		{alice, Describe, "payroll", "Access denied: CN=alice may not describe this topic"},
		{Anonymous, Produce, "orders", "Access denied: anonymous may not produce to this topic"},
		{TokenPrincipal("ci"), Admin, "x", "Access denied: token:ci may not administer this topic"},
	}
	for _, tc := range cases {
		err := a.Allow(tc.p, true, tc.op, tc.topic)
		if err == nil || err.Error() != tc.want {
			t.Errorf("Allow(%v, %v, %q) = %v, want %q", tc.p, tc.op, tc.topic, err, tc.want)
		}
		var de *DeniedError
		if !errors.As(err, &de) || de.Principal != tc.p || de.Op != tc.op || de.Topic != tc.topic || !errors.Is(err, ErrDenied) {
			t.Errorf("Allow(%v, %v, %q): error %#v", tc.p, tc.op, tc.topic, err)
		}
	}
}

func TestACLConfigErrors(t *testing.T) {
	rule := func(p string, topics, ops []string) config.ACLRule {
		return config.ACLRule{Principal: p, Topics: topics, Operations: ops}
	}
	all := []string{"*"}
	cases := []struct {
		name     string
		acl      config.ACL
		contains []string
	}{
		{"bad default", config.ACL{Enabled: true, Default: "maybe"}, []string{"acl.default", `"maybe"`}},
		{"allow with rules", config.ACL{Enabled: true, Default: "allow", Rules: []config.ACLRule{rule("*", all, all)}}, []string{"acl.default", "no effect"}},
		{"empty principal", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("", all, all)}}, []string{"acl.rules[0].principal"}},
		{"lower-case cn", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", all, all), rule("cn=alice", all, all)}}, []string{"acl.rules[1].principal", `"cn=alice"`, "case-sensitive"}},
		{"bare name", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("alice", all, all)}}, []string{"acl.rules[0].principal", `"alice"`}},
		{"empty CN", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("CN=", all, all)}}, []string{"empty common name"}},
		{"CN wildcard", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("CN=*", all, all)}}, []string{"wildcards"}},
		{"token wildcard", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("token:*", all, all)}}, []string{"wildcards"}},
		{"bad token name", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("token:a b", all, all)}}, []string{"token name"}},
		{"empty token name", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("token:", all, all)}}, []string{"empty token name"}},
		{"no topics", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", nil, all)}}, []string{"acl.rules[0].topics"}},
		{"leading star", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{"*orders"}, all)}}, []string{"acl.rules[0].topics[0]", `"*orders"`}},
		{"inner star", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{"ok", "ord*ers"}, all)}}, []string{"topics[1]"}},
		{"double star", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{"orders**"}, all)}}, []string{"topics[0]"}},
		{"bad char", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{"orders.eu"}, all)}}, []string{"topics[0]"}},
		{"question mark", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{"orders-?"}, all)}}, []string{"topics[0]"}},
		{"empty topic", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{""}, all)}}, []string{"topics[0]"}},
		{"long topic", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", []string{strings.Repeat("a", 256)}, all)}}, []string{"topics[0]"}},
		{"no operations", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", all, nil)}}, []string{"acl.rules[0].operations"}},
		{"bad operation", config.ACL{Enabled: true, Rules: []config.ACLRule{rule("*", all, []string{"consume", "write"})}}, []string{"operations[1]", `"write"`}},
	}
	for _, tc := range cases {
		_, err := NewAuthorizer(config.Auth{}, tc.acl)
		if err == nil {
			t.Errorf("%s: no error", tc.name)
			continue
		}
		if !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v does not wrap ErrConfig", tc.name, err)
		}
		for _, s := range tc.contains {
			if !strings.Contains(err.Error(), s) {
				t.Errorf("%s: error %q does not mention %q", tc.name, err, s)
			}
		}
	}
}

func TestOpString(t *testing.T) {
	got := fmt.Sprint(Produce, Consume, Admin, Describe, Op(0))
	if got != "produce consume admin describe op(0)" {
		t.Errorf("got %q", got)
	}
}
