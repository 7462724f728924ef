package e2e

// End-to-end checks of the [tls], [auth] and [acl] sections against real
// lance processes (docs/security.md). Every expectation comes from a small
// model of the documented rules written here, not from the server's code:
// for each principal, topic and request the model says "allowed" or gives
// the exact ErrorResponse text, and the reply must match it.

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lance-go/lance/lance/internal/security/testpki"
)

// Operations of the [acl] section.
const (
	opProduce  = "produce"
	opConsume  = "consume"
	opAdmin    = "admin"
	opDescribe = "describe"
)

const textAuthRequired = "Authentication required"

// secRule is one [[acl.rules]] table.
type secRule struct {
	principal string
	topics    []string
	ops       []string
}

// secPolicy is what a server was configured with, as the documentation
// says it behaves.
type secPolicy struct {
	auth      bool
	writeOnly bool
	acl       bool
	rules     []secRule
}

// secValidName is the topic name rule: 1 to 255 of A-Z a-z 0-9 -.
func secValidName(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func secPatternMatches(pattern, topic string) bool {
	if pattern == "*" {
		return true
	}
	if pre, ok := strings.CutSuffix(pattern, "*"); ok {
		return strings.HasPrefix(topic, pre)
	}
	return pattern == topic
}

// granted returns the operations the rules give principal on topic.
func (p secPolicy) granted(principal, topic string) map[string]bool {
	g := map[string]bool{}
	if !secValidName(topic) {
		return g
	}
	for _, r := range p.rules {
		if r.principal != "*" && r.principal != principal {
			continue
		}
		if !slices.ContainsFunc(r.topics, func(pat string) bool { return secPatternMatches(pat, topic) }) {
			continue
		}
		for _, op := range r.ops {
			if op == "*" {
				for _, o := range []string{opProduce, opConsume, opAdmin, opDescribe} {
					g[o] = true
				}
			} else {
				g[op] = true
			}
		}
	}
	return g
}

// needsToken reports whether op needs an authenticated connection.
func (p secPolicy) needsToken(op string) bool {
	return p.auth && !(p.writeOnly && (op == opConsume || op == opDescribe))
}

// expect returns "" when the request is allowed, or the ErrorResponse text
// the documentation promises.
func (p secPolicy) expect(principal string, authenticated bool, op, topic string) string {
	if !authenticated && p.needsToken(op) {
		return textAuthRequired
	}
	if !p.acl {
		return ""
	}
	g := p.granted(principal, topic)
	if g[op] || op == opDescribe && len(g) > 0 {
		return ""
	}
	verb := map[string]string{opProduce: "produce to", opConsume: "consume from", opAdmin: "administer", opDescribe: "describe"}[op]
	if len(g) == 0 {
		return fmt.Sprintf("Access denied: %s may not %s this topic", principal, verb)
	}
	return fmt.Sprintf("Access denied: %s may not %s topic '%s'", principal, verb, topic)
}

// visible reports whether ListTopics shows topic to principal.
func (p secPolicy) visible(principal, topic string) bool {
	return !p.acl || len(p.granted(principal, topic)) > 0
}

// toml renders the [auth] and [acl] sections.
func (p secPolicy) toml(tokens []string) string {
	var b strings.Builder
	if p.auth {
		fmt.Fprintf(&b, "[auth]\nenabled = true\nwrite_only = %v\ntokens = [", p.writeOnly)
		for i, tok := range tokens {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(strconv.Quote(tok))
		}
		b.WriteString("]\n\n")
	}
	if p.acl {
		b.WriteString("[acl]\nenabled = true\ndefault = \"deny\"\n\n")
		for _, r := range p.rules {
			fmt.Fprintf(&b, "[[acl.rules]]\nprincipal = %s\ntopics = %s\noperations = %s\n\n",
				strconv.Quote(r.principal), secTOMLList(r.topics), secTOMLList(r.ops))
		}
	}
	return b.String()
}

func secTOMLList(items []string) string {
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// secTLSSection renders a [tls] section for the PKI's server certificate.
func secTLSSection(p *testpki.PKI, caFile string, require bool, minVersion string) string {
	s := fmt.Sprintf("[tls]\nenabled = true\ncert_file = %s\nkey_file = %s\nrequire_client_cert = %v\nmin_version = %s\n",
		strconv.Quote(p.Server.CertFile), strconv.Quote(p.Server.KeyFile), require, strconv.Quote(minVersion))
	if caFile != "" {
		s += "ca_file = " + strconv.Quote(caFile) + "\n"
	}
	return s + "\n"
}

// secWriteConfig writes a lance.toml and returns its path.
func secWriteConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lance.toml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func secPKI(t *testing.T) *testpki.PKI {
	t.Helper()
	p, err := testpki.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// secIssue adds a client certificate with common name cn.
func secIssue(t *testing.T, p *testpki.PKI, file, cn string) *testpki.Cert {
	t.Helper()
	c, err := p.Issue(file, testpki.Spec{CN: cn})
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// secTLSConfig is the client side: it trusts the PKI's CA, presents cert
// (nil: none) and speaks at most maxVersion (0: the newest).
func secTLSConfig(p *testpki.PKI, cert *testpki.Cert, maxVersion uint16) *tls.Config {
	cfg := p.ClientTLS(cert)
	cfg.MaxVersion = maxVersion
	return cfg
}

// dialTLS connects with TLS and proves the connection usable with one
// GetClusterStatus round trip. With TLS 1.3 a server that refuses the
// client certificate says so only after the client finished its side of
// the handshake, so the refusal may surface on that first read; either
// way the connection is reported as failed.
func dialTLS(t testing.TB, addr string, cfg *tls.Config) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	tc := tls.Client(nc, cfg)
	tc.SetDeadline(time.Now().Add(replyTimeout))
	if err := tc.Handshake(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	tc.SetDeadline(time.Time{})
	c := &client{t: t, nc: tc, r: bufio.NewReaderSize(tc, 64<<10), d: ieee}
	if err := c.sendErr(controlFrame(ieee, codeGetClusterStatus, nil)); err != nil {
		tc.Close()
		return nil, fmt.Errorf("first request: %w", err)
	}
	f, err := c.next()
	if err != nil {
		tc.Close()
		return nil, fmt.Errorf("first reply: %w", err)
	}
	if f.Flags != flagControl || byte(f.BatchID) != codeClusterStatusResponse {
		tc.Close()
		return nil, fmt.Errorf("GetClusterStatus answered with %s", f.describe())
	}
	t.Cleanup(func() { tc.Close() })
	return c, nil
}

func mustDialTLS(t testing.TB, addr string, cfg *tls.Config) *client {
	t.Helper()
	c, err := dialTLS(t, addr, cfg)
	if err != nil {
		t.Fatalf("TLS connection to %s: %v", addr, err)
	}
	return c
}

// authReply is the AuthenticateResponse frame with success ok and msg.
func authReply(ok bool, msg string) []byte {
	b := byte(0)
	if ok {
		b = 1
	}
	return controlFrame(ieee, codeAuthenticateResponse, append([]byte{b}, msg...))
}

// secTopics is the live set of topics of a server (name to id), kept up
// to date as the tests create and delete; adm is a connection allowed to
// administer all of them.
type secTopics struct {
	ids map[string]uint32
	adm *client
}

func newSecTopics(t testing.TB, adm *client, names ...string) *secTopics {
	t.Helper()
	st := &secTopics{ids: map[string]uint32{}, adm: adm}
	for _, n := range names {
		st.ids[n] = createTopic(t, adm, n).ID
	}
	return st
}

func (st *secTopics) sorted() []string {
	names := make([]string, 0, len(st.ids))
	for n := range st.ids {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// tally counts the outcomes of a matrix.
type tally struct {
	requests         int
	allowed          int
	denied           int
	unexpectedAllows int
	unexpectedDenies int
	wrongReplies     int
}

// countCreated counts a reply that should have been a refusal of a
// creation: a TopicResponse is an unexpected allow, anything else a reply
// of the wrong shape. It reports whether the topic was created.
func (ty *tally) countCreated(f frame) bool {
	if f.Flags == flagControl && byte(f.BatchID) == codeTopicResponse {
		ty.unexpectedAllows++
		return true
	}
	ty.wrongReplies++
	return false
}

func (ty *tally) report(t *testing.T) {
	t.Helper()
	t.Logf("%d requests: %d allowed, %d refused; %d unexpected allows, %d unexpected refusals, %d replies of the wrong shape",
		ty.requests, ty.allowed, ty.denied, ty.unexpectedAllows, ty.unexpectedDenies, ty.wrongReplies)
	if ty.unexpectedAllows != 0 {
		t.Errorf("%d requests were allowed that the documented rules refuse", ty.unexpectedAllows)
	}
}

// secSession is one connection whose identity the model knows.
type secSession struct {
	t             *testing.T
	c             *client
	principal     string
	authenticated bool
	pol           secPolicy
	topics        *secTopics
	ty            *tally
	batchID       uint64
}

// secOp is one kind of request of the matrix.
type secOp struct {
	name string
	op   string
	// build returns the request for topic name (id).
	build func(s *secSession, name string, id uint32) []byte
	// check returns nil if f is the reply an allowed request gets.
	check func(s *secSession, f frame, name string, id uint32) error
	// destructive requests (DeleteTopic) run last; an allowed one is
	// undone by recreating the topic.
	destructive bool
}

func secControlCheck(code byte, want func(p []byte, name string, id uint32) error) func(*secSession, frame, string, uint32) error {
	return func(_ *secSession, f frame, name string, id uint32) error {
		if f.Flags != flagControl || byte(f.BatchID) != code {
			return fmt.Errorf("got %s, want control 0x%02X", f.describe(), code)
		}
		if want == nil {
			return nil
		}
		return want(f.Payload, name, id)
	}
}

func secJSONTopic(p []byte, name string, id uint32) error {
	var m struct {
		ID   uint32 `json:"id"`
		Name string `json:"name"`
	}
	if err := json.Unmarshal(p, &m); err != nil {
		return fmt.Errorf("TopicResponse %q: %v", p, err)
	}
	if m.ID != id || m.Name != name {
		return fmt.Errorf("TopicResponse %q, want id %d name %q", p, id, name)
	}
	return nil
}

const secConsumer = 77

// secOps are the requests every (principal, topic) cell is tried with.
var secOps = []secOp{
	{
		name: "ingest", op: opProduce,
		build: func(s *secSession, _ string, id uint32) []byte {
			s.batchID++
			return ingestFrame(ieee, batch{Topic: id, ID: s.batchID, Records: 1, Data: []byte("acl probe")})
		},
		check: func(s *secSession, f frame, _ string, _ uint32) error {
			_, err := checkAck(f, batch{ID: s.batchID})
			return err
		},
	},
	{
		name: "Fetch", op: opConsume,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeFetch, fetchPayload(id, 0, 4096))
		},
		check: secControlCheck(codeFetchResponse, func(p []byte, _ string, _ uint32) error {
			_, err := decodeFetchReply(p)
			return err
		}),
	},
	{
		name: "FetchBatches", op: opConsume,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeFetchBatches, fetchBatchesPayload(id, 0, 4096, 0))
		},
		check: secControlCheck(codeBatchesResponse, func(p []byte, _ string, _ uint32) error {
			_, err := decodeBatchesReply(p)
			return err
		}),
	},
	{
		name: "OffsetForTime", op: opConsume,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeOffsetForTime, offsetForTimePayload(id, 0))
		},
		check: secControlCheck(codeOffsetResponse, func(p []byte, _ string, _ uint32) error {
			if len(p) != 24 {
				return fmt.Errorf("OffsetResponse of %d bytes, want 24", len(p))
			}
			return nil
		}),
	},
	{
		name: "Subscribe", op: opConsume,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeSubscribe, subscribePayload(id, 0, 4096, secConsumer))
		},
		check: secControlCheck(codeSubscribeAck, func(p []byte, _ string, _ uint32) error {
			if len(p) != 16 || le64at(p, 0) != secConsumer {
				return fmt.Errorf("SubscribeAck % X, want consumer %d first", p, secConsumer)
			}
			return nil
		}),
	},
	{
		name: "CommitOffset", op: opConsume,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeCommitOffset, commitPayload(id, secConsumer, 0))
		},
		check: secControlCheck(codeCommitAck, func(p []byte, _ string, _ uint32) error {
			if string(p) != string(pairPayload(secConsumer, 0)) {
				return fmt.Errorf("CommitAck % X, want consumer %d offset 0", p, secConsumer)
			}
			return nil
		}),
	},
	{
		name: "GetTopic", op: opDescribe,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeGetTopic, topicIDPayload(id))
		},
		check: secControlCheck(codeTopicResponse, secJSONTopic),
	},
	{
		name: "SetRetention", op: opAdmin,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeSetRetention, setRetentionPayload(id, 0, 0))
		},
		check: secControlCheck(codeTopicResponse, func(p []byte, _ string, id uint32) error {
			want := fmt.Sprintf(`{"max_age_secs":0,"max_bytes":0,"topic_id":%d}`, id)
			if string(p) != want {
				return fmt.Errorf("SetRetention reply %s, want %s", p, want)
			}
			return nil
		}),
	},
	{
		// The topic exists, so a request that passes the access check
		// gets "already exists": that proves the check let it through
		// without changing anything.
		name: "CreateTopic", op: opAdmin,
		build: func(_ *secSession, name string, _ uint32) []byte {
			return controlFrame(ieee, codeCreateTopic, []byte(name))
		},
		check: secExistsCheck,
	},
	{
		name: "CreateTopicWithRetention", op: opAdmin,
		build: func(_ *secSession, name string, _ uint32) []byte {
			return controlFrame(ieee, codeCreateTopicWithRetention, createWithRetentionPayload(name, 0, 0))
		},
		check: secExistsCheck,
	},
	{
		name: "DeleteTopic", op: opAdmin, destructive: true,
		build: func(_ *secSession, _ string, id uint32) []byte {
			return controlFrame(ieee, codeDeleteTopic, topicIDPayload(id))
		},
		check: secControlCheck(codeTopicResponse, func(p []byte, _ string, id uint32) error {
			if want := fmt.Sprintf(`{"deleted":%d}`, id); string(p) != want {
				return fmt.Errorf("DeleteTopic reply %s, want %s", p, want)
			}
			return nil
		}),
	},
}

func secOpNamed(name string) secOp {
	for _, o := range secOps {
		if o.name == name {
			return o
		}
	}
	panic("no request kind " + name)
}

func secExistsCheck(_ *secSession, f frame, name string, _ uint32) error {
	want := "Topic '" + name + "' already exists"
	if f.Flags != flagControl || byte(f.BatchID) != codeErrorResponse || string(f.Payload) != want {
		return fmt.Errorf("got %s, want the ErrorResponse %q", f.describe(), want)
	}
	return nil
}

// isDenial reports whether f refuses a request on access grounds.
func isDenial(f frame) bool {
	if f.Flags != flagControl || byte(f.BatchID) != codeErrorResponse {
		return false
	}
	p := string(f.Payload)
	return p == textAuthRequired || strings.HasPrefix(p, "Access denied")
}

// try sends one request and checks the reply against the model.
func (s *secSession) try(o secOp, name string, id uint32) {
	s.t.Helper()
	want := s.pol.expect(s.principal, s.authenticated, o.op, name)
	f := s.c.call(o.build(s, name, id))
	what := fmt.Sprintf("%s: %s on %.40q (id %d)", s.principal, o.name, name, id)
	s.ty.requests++
	switch {
	case want == "" && isDenial(f):
		s.ty.unexpectedDenies++
		s.t.Errorf("%s: refused with %s, but the rules allow it", what, f.describe())
	case want == "":
		s.ty.allowed++
		if err := o.check(s, f, name, id); err != nil {
			s.ty.wrongReplies++
			s.t.Errorf("%s: %v", what, err)
		}
		if o.destructive {
			s.topics.ids[name] = createTopic(s.t, s.topics.adm, name).ID
		}
	case !isDenial(f):
		if o.check(s, f, name, id) != nil {
			s.ty.wrongReplies++
			s.t.Errorf("%s: got %s, want the refusal %q", what, f.describe(), want)
			return
		}
		s.ty.unexpectedAllows++
		s.t.Errorf("%s: allowed (%s), want the refusal %q", what, f.describe(), want)
		if o.destructive {
			s.topics.ids[name] = createTopic(s.t, s.topics.adm, name).ID
		}
	default:
		s.ty.denied++
		expectError(s.t, ieee, what, f, want)
	}
}

// listTopicsReply returns the names ListTopics reports, or the error text.
func listTopicsReply(t testing.TB, c *client) ([]string, string) {
	t.Helper()
	f := c.control(codeListTopics, nil)
	if f.Flags == flagControl && byte(f.BatchID) == codeErrorResponse {
		return nil, string(f.Payload)
	}
	p, ok := expectControl(t, "ListTopics", f, codeTopicResponse)
	if !ok {
		t.FailNow()
	}
	var m struct {
		Topics []struct {
			ID   uint32 `json:"id"`
			Name string `json:"name"`
		} `json:"topics"`
	}
	if err := json.Unmarshal(p, &m); err != nil || m.Topics == nil {
		t.Fatalf("ListTopics reply %q: %v", p, err)
	}
	names := []string{}
	for _, e := range m.Topics {
		names = append(names, e.Name)
	}
	sort.Strings(names)
	return names, ""
}

// checkList compares ListTopics with the topics the model lets the
// session see.
func (s *secSession) checkList() {
	s.t.Helper()
	s.ty.requests++
	got, errText := listTopicsReply(s.t, s.c)
	if !s.authenticated && s.pol.needsToken(opDescribe) {
		switch {
		case errText == textAuthRequired:
			s.ty.denied++
		case errText == "":
			s.ty.unexpectedAllows++
			s.t.Errorf("%s: ListTopics gave %q, want %q", s.principal, got, textAuthRequired)
		default:
			s.ty.wrongReplies++
			s.t.Errorf("%s: ListTopics refused with %q, want %q", s.principal, errText, textAuthRequired)
		}
		return
	}
	want := []string{}
	for _, n := range s.topics.sorted() {
		if s.pol.visible(s.principal, n) {
			want = append(want, n)
		}
	}
	if errText == "" && slices.Equal(got, want) {
		s.ty.allowed++
		return
	}
	if errText == "" && !secSubset(got, want) {
		s.ty.unexpectedAllows++
	} else {
		s.ty.wrongReplies++
	}
	s.t.Errorf("%s: ListTopics shows %q (error %q), want %q", s.principal, got, errText, want)
}

func secSubset(a, b []string) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// runMatrix tries every request of secOps on every live topic, then
// ListTopics.
func (s *secSession) runMatrix() {
	s.t.Helper()
	for _, name := range s.topics.sorted() {
		for _, o := range secOps {
			s.try(o, name, s.topics.ids[name])
		}
	}
	s.checkList()
}

// authenticate sends Authenticate with token and checks the reply bytes;
// on success the session takes principal.
func (s *secSession) authenticate(token string, ok bool, msg, principal string) {
	s.t.Helper()
	expectBytes(s.t, fmt.Sprintf("%s: Authenticate %q", s.principal, token),
		s.c.control(codeAuthenticate, []byte(token)), authReply(ok, msg))
	if ok && principal != "" {
		s.principal, s.authenticated = principal, true
	}
}

// TestSecurityMTLS runs the ACL matrix over mutual TLS: which client
// certificates get a connection at all, and for those that do, every
// request kind on topics whose names sit on both sides of the rules'
// patterns.
func TestSecurityMTLS(t *testing.T) {
	t.Parallel()
	pki := secPKI(t)
	admin := secIssue(t, pki, "client-admin", "admin")
	carol := secIssue(t, pki, "client-carol", "carol")
	upperAlice := secIssue(t, pki, "client-upper-alice", "Alice")
	spaceAlice := secIssue(t, pki, "client-space-alice", "alice ")
	spaceAdmin := secIssue(t, pki, "client-space-admin", "admin ")

	pol := secPolicy{acl: true, rules: []secRule{
		{"CN=alice", []string{"orders-*"}, []string{"produce", "consume"}},
		{"CN=admin", []string{"*"}, []string{"*"}},
		{"CN=carol", []string{"orders-eu"}, []string{"describe"}},
	}}
	cfg := secWriteConfig(t, secTLSSection(pki, pki.CA.CertFile, true, "1.2")+pol.toml(nil))
	s := startServer(t, "--config", cfg, "--limits-handshake-timeout", "3s")

	// A bare TCP connection that never starts a handshake is closed once
	// the handshake time is up.
	idle, err := dialErr(s.addr, ieee)
	if err != nil {
		t.Fatal(err)
	}
	idle.t = t
	defer idle.close()

	t.Run("handshake", func(t *testing.T) {
		refused := []struct {
			name string
			cert *testpki.Cert
		}{
			{"no certificate", nil},
			{"certificate from another CA", &pki.ClientWrongCA},
			{"expired certificate", &pki.ClientExpired},
			{"server certificate offered as a client one", &pki.Server},
		}
		unexpected := 0
		for _, tc := range refused {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				c, err := dialTLS(t, s.addr, secTLSConfig(pki, tc.cert, v))
				if err == nil {
					unexpected++
					c.close()
					t.Errorf("%s, TLS max %x: connected, want the handshake refused", tc.name, v)
					continue
				}
				t.Logf("%s, TLS max %x: %v", tc.name, v, err)
			}
		}
		if unexpected != 0 {
			t.Errorf("%d refused certificates got a working connection", unexpected)
		}
		for _, cert := range []*testpki.Cert{&pki.Client, &pki.ClientBob, &pki.ClientNoCN, admin} {
			for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
				mustDialTLS(t, s.addr, secTLSConfig(pki, cert, v)).close()
			}
		}
		// LWP in plain text to the TLS port: the first bytes are not a
		// TLS record, so the server closes without a reply.
		plain := s.dialT(t, ieee)
		plain.send(controlFrame(ieee, codeGetClusterStatus, nil))
		plain.expectClosed("plain-text LWP to the TLS port")
		if !s.running() {
			t.Fatal("lance exited after the refused handshakes")
		}
	})

	adm := mustDialTLS(t, s.addr, secTLSConfig(pki, admin, 0))
	long := "orders-" + strings.Repeat("z", 255-len("orders-"))
	topics := newSecTopics(t, adm, "orders-x", "orders-", "orders", "ORDERS-x", "ordersx", "orders-eu", "payments", long)

	ty := new(tally)
	principals := []struct {
		principal string
		cert      *testpki.Cert
	}{
		{"CN=alice", &pki.Client},
		{"CN=Alice", upperAlice},
		{"CN=alice ", spaceAlice},
		{"CN=bob", &pki.ClientBob},
		{"CN=carol", carol},
		{"CN=", &pki.ClientNoCN},
		{"CN=admin ", spaceAdmin},
		{"CN=admin", admin},
	}
	fresh := 0
	for _, p := range principals {
		ss := &secSession{t: t, c: mustDialTLS(t, s.addr, secTLSConfig(pki, p.cert, 0)), principal: p.principal, pol: pol, topics: topics, ty: ty}
		ss.runMatrix()

		// Creating topics that do not exist yet: allowed ones are
		// added to the live set.
		fresh++
		for _, name := range []string{fmt.Sprintf("orders-new%d", fresh), fmt.Sprintf("Orders-new%d", fresh)} {
			ss.tryCreate(codeCreateTopic, name, []byte(name))
			rname := name + "-r"
			ss.tryCreate(codeCreateTopicWithRetention, rname, createWithRetentionPayload(rname, 3600, 1<<20))
		}
		// Names that are not valid topic names match no rule, not
		// even "*": the refusal comes before the name check.
		for _, name := range []string{long + "z", "orders-x!", "orders-*", "orders-x/../payments"} {
			ss.ty.requests++
			want := fmt.Sprintf("Access denied: %s may not administer this topic", p.principal)
			f := ss.c.control(codeCreateTopic, []byte(name))
			if isDenial(f) {
				ss.ty.denied++
			} else {
				ss.ty.countCreated(f)
			}
			expectError(t, ieee, fmt.Sprintf("CreateTopic %.40q", name), f, want)
		}
		// With auth disabled Authenticate accepts any non-empty token
		// and leaves the principal alone.
		ss.authenticate("", false, "No token provided", "")
		ss.authenticate("anything", true, "Authenticated", "")
		ss.try(secOpNamed("CreateTopic"), "payments", topics.ids["payments"])
		ss.try(secOpNamed("ingest"), "orders-x", topics.ids["orders-x"])
		ss.checkList()
		ss.c.close()
	}
	ty.report(t)

	idle.expectClosed("a TCP connection that never sends a handshake")
	if !s.running() {
		t.Fatal("lance is not running at the end")
	}
}

// tryCreate creates a topic that does not exist and checks the outcome
// against the model; a created topic joins the live set.
func (s *secSession) tryCreate(code uint64, name string, payload []byte) {
	s.t.Helper()
	want := s.pol.expect(s.principal, s.authenticated, opAdmin, name)
	f := s.c.control(code, payload)
	what := fmt.Sprintf("%s: create 0x%02X %q", s.principal, code, name)
	s.ty.requests++
	switch {
	case want == "" && isDenial(f):
		s.ty.unexpectedDenies++
		s.t.Errorf("%s: refused with %s, but the rules allow it", what, f.describe())
	case want == "":
		s.ty.allowed++
		p, ok := expectControl(s.t, what, f, codeTopicResponse)
		if !ok {
			return
		}
		var m struct {
			ID   uint32 `json:"id"`
			Name string `json:"name"`
		}
		if err := json.Unmarshal(p, &m); err != nil || m.Name != name || m.ID == 0 {
			s.t.Errorf("%s: reply %s (%v)", what, p, err)
			return
		}
		s.topics.ids[name] = m.ID
	case !isDenial(f):
		s.t.Errorf("%s: got %s, want the refusal %q", what, f.describe(), want)
		if !s.ty.countCreated(f) {
			return
		}
		// It was created after all; keep the live set true.
		var m struct {
			ID uint32 `json:"id"`
		}
		if json.Unmarshal(f.Payload, &m) == nil && m.ID != 0 {
			s.topics.ids[name] = m.ID
		}
	default:
		s.ty.denied++
		expectError(s.t, ieee, what, f, want)
	}
}

// TestSecurityTLSWithoutClientCA: TLS with no ca_file. The server never
// asks for a certificate, so every TLS client is anonymous even when it
// has one; plain-text clients are closed; min_version 1.3 refuses a TLS
// 1.2 client.
func TestSecurityTLSWithoutClientCA(t *testing.T) {
	t.Parallel()
	pki := secPKI(t)
	pol := secPolicy{acl: true, rules: []secRule{
		{"anonymous", []string{"pub-*"}, []string{"*"}},
	}}
	cfg := secWriteConfig(t, secTLSSection(pki, "", false, "1.3")+pol.toml(nil))
	s := startServer(t, "--config", cfg)

	plain := s.dial(ieee)
	plain.send(controlFrame(ieee, codeGetClusterStatus, nil))
	plain.expectClosed("plain-text LWP to the TLS port")

	if c, err := dialTLS(t, s.addr, secTLSConfig(pki, nil, tls.VersionTLS12)); err == nil {
		c.close()
		t.Error("a TLS 1.2 client connected to a server with min_version 1.3")
	}

	anon := mustDialTLS(t, s.addr, secTLSConfig(pki, nil, 0))
	topics := newSecTopics(t, anon, "pub-a")
	ty := new(tally)
	(&secSession{t: t, c: anon, principal: "anonymous", pol: pol, topics: topics, ty: ty}).runMatrix()

	// A client certificate (even a good one) is not asked for, so it does
	// not name the client.
	withCert := &secSession{t: t, c: mustDialTLS(t, s.addr, secTLSConfig(pki, &pki.Client, 0)), principal: "anonymous", pol: pol, topics: topics, ty: ty}
	withCert.runMatrix()
	withCert.tryCreate(codeCreateTopic, "orders-x", []byte("orders-x"))
	withCert.tryCreate(codeCreateTopic, "pub-b", []byte("pub-b"))

	// The data goes through TLS both ways.
	data := []byte(strings.Repeat("tls payload ", 5000))
	ingest(t, anon, batch{Topic: topics.ids["pub-b"], ID: 1, Records: 1, Data: data})
	if got := readLog(t, withCert.c, topics.ids["pub-b"], 0, uint64(len(data)), 7000, 1<<20); string(got) != string(data) {
		t.Errorf("read back over TLS: %s", firstDiff(got, data))
	}
	ty.report(t)
	if !s.running() {
		t.Fatal("lance is not running at the end")
	}
}

// secTokenName is the principal of a token entry without a name.
func secTokenName(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return "token:sha256-" + hex.EncodeToString(sum[:])[:12]
}

// TestSecurityTokens: auth.enabled with write_only = false over plain TCP,
// ACL rules on token principals.
func TestSecurityTokens(t *testing.T) {
	t.Parallel()
	const (
		ciSecret     = "ci-secret-5f0e6a2d"
		readerSecret = "reader-secret-91c4"
		bareSecret   = "bare-secret-77aa03"
	)
	bare := secTokenName(bareSecret)
	pol := secPolicy{auth: true, acl: true, rules: []secRule{
		{"token:ci", []string{"*"}, []string{"*"}},
		{"token:reader", []string{"orders-*"}, []string{"consume"}},
		{bare, []string{"payments"}, []string{"describe"}},
	}}
	cfg := secWriteConfig(t, pol.toml([]string{"ci:" + ciSecret, "reader:" + readerSecret, bareSecret}))
	s := startServer(t, "--config", cfg)
	ty := new(tally)

	adm := &secSession{t: t, c: s.dial(ieee), principal: "anonymous", pol: pol, ty: ty}
	adm.authenticate(ciSecret, true, "Authenticated", "token:ci")
	topics := newSecTopics(t, adm.c, "orders-x", "ORDERS-x", "payments")
	adm.topics = topics

	{
		ss := &secSession{t: t, c: s.dial(ieee), principal: "anonymous", pol: pol, topics: topics, ty: ty}
		// Open commands.
		if f := ss.c.call(keepaliveFrame(ieee)); f.Flags != flagKeepalive {
			t.Errorf("keepalive answered with %s", f.describe())
		}
		expectControl(t, "GetClusterStatus", ss.c.control(codeGetClusterStatus, nil), codeClusterStatusResponse)
		ss.runMatrix()
		// Refused tokens change nothing.
		ss.authenticate("", false, "No token provided", "")
		ss.authenticate("\xff\xfe", false, "Invalid token encoding", "")
		ss.authenticate("wrong", false, "Invalid token", "")
		ss.authenticate("ci:"+ciSecret, false, "Invalid token", "")
		ss.authenticate(ciSecret+" ", false, "Invalid token", "")
		ss.authenticate("ci", false, "Invalid token", "")
		ss.runMatrix()
		// Then a good one.
		ss.authenticate(readerSecret, true, "Authenticated", "token:reader")
		ss.runMatrix()
	}
	adm.runMatrix()
	{
		ss := &secSession{t: t, c: s.dial(ieee), principal: "anonymous", pol: pol, topics: topics, ty: ty}
		ss.authenticate(bareSecret, true, "Authenticated", bare)
		ss.runMatrix()
	}
	{
		ss := &secSession{t: t, c: s.dial(ieee), principal: "anonymous", pol: pol, topics: topics, ty: ty}
		ss.authenticate(ciSecret, true, "Authenticated", "token:ci")
		ss.authenticate(readerSecret, true, "Authenticated", "token:reader")
		ss.runMatrix()
		// A failed Authenticate keeps the principal and the
		// authentication of the connection.
		ss.authenticate("wrong", false, "Invalid token", "")
		ss.runMatrix()
		ss.authenticate(ciSecret, true, "Authenticated", "token:ci")
		ss.authenticate(bareSecret+"x", false, "Invalid token", "")
		ss.runMatrix()
	}
	ty.report(t)
}

// TestSecurityTokensWriteOnly: write_only = true together with optional
// client certificates. Reads need no token (the ACL still applies to the
// certificate's or the anonymous principal); writes do; a token replaces
// the certificate's principal, and the certificate's rights do not add to
// the token's.
func TestSecurityTokensWriteOnly(t *testing.T) {
	t.Parallel()
	pki := secPKI(t)
	const (
		ciSecret     = "ci-secret-0d8b"
		statusSecret = "status-writer-4471"
	)
	pol := secPolicy{auth: true, writeOnly: true, acl: true, rules: []secRule{
		{"token:ci", []string{"*"}, []string{"*"}},
		{"CN=alice", []string{"orders-*"}, []string{"consume"}},
		{"*", []string{"status"}, []string{"consume"}},
		{"token:status", []string{"status"}, []string{"produce"}},
	}}
	cfg := secWriteConfig(t, secTLSSection(pki, pki.CA.CertFile, false, "1.2")+
		pol.toml([]string{"ci:" + ciSecret, "status:" + statusSecret}))
	s := startServer(t, "--config", cfg)
	ty := new(tally)

	admC := mustDialTLS(t, s.addr, secTLSConfig(pki, nil, 0))
	adm := &secSession{t: t, c: admC, principal: "anonymous", pol: pol, ty: ty}
	adm.authenticate(ciSecret, true, "Authenticated", "token:ci")
	topics := newSecTopics(t, admC, "orders-x", "status", "payments")
	ingest(t, admC, batch{Topic: topics.ids["status"], ID: 1000, Records: 1, Data: []byte("up")})

	// With a CA but no requirement, a bad certificate still fails the
	// handshake.
	for _, bad := range []*testpki.Cert{&pki.ClientWrongCA, &pki.ClientExpired} {
		if c, err := dialTLS(t, s.addr, secTLSConfig(pki, bad, 0)); err == nil {
			c.close()
			t.Errorf("certificate %s: connected, want the handshake refused", bad.CertFile)
		}
	}

	sessions := []struct {
		name   string
		cert   *testpki.Cert
		tokens []string // tried in order, each must succeed
		then   string   // principal after the tokens
	}{
		{"anonymous", nil, nil, "anonymous"},
		{"certificate", &pki.Client, nil, "CN=alice"},
		{"certificate and ci token", &pki.Client, []string{ciSecret}, "token:ci"},
		{"certificate and status token", &pki.Client, []string{statusSecret}, "token:status"},
		{"bob's certificate", &pki.ClientBob, nil, "CN=bob"},
	}
	for _, se := range sessions {
		ss := &secSession{t: t, c: mustDialTLS(t, s.addr, secTLSConfig(pki, se.cert, 0)), principal: "anonymous", pol: pol, topics: topics, ty: ty}
		if se.cert != nil {
			ss.principal = "CN=" + se.cert.CN
		}
		ss.authenticate("nope", false, "Invalid token", "")
		for _, tok := range se.tokens {
			ss.authenticate(tok, true, "Authenticated", se.then)
		}
		if ss.principal != se.then {
			t.Fatalf("%s: model principal %q, want %q", se.name, ss.principal, se.then)
		}
		ss.runMatrix()
		ss.c.close()
	}
	ty.report(t)
}

// TestSecurityUnsubscribeAndTopicZero holds the server to two rows of
// docs/security.md that the matrix above leaves out: Unsubscribe is a
// consume request (so it needs a token with write_only = false and a
// consume right under an ACL), and Subscribe needs a token whatever
// topic id it names.
func TestSecurityUnsubscribeAndTopicZero(t *testing.T) {
	t.Parallel()
	const secret = "unsub-secret-9d1f"
	pol := secPolicy{auth: true, acl: true, rules: []secRule{
		{"token:owner", []string{"*"}, []string{"*"}},
		{"token:other", []string{"elsewhere"}, []string{"consume"}},
	}}
	cfg := secWriteConfig(t, pol.toml([]string{"owner:" + secret, "other:" + secret + "-2"}))
	s := startServer(t, "--config", cfg)
	owner := s.dial(ieee)
	expectBytes(t, "Authenticate", owner.control(codeAuthenticate, []byte(secret)), authReply(true, "Authenticated"))
	id := createTopic(t, owner, "private").ID
	createTopic(t, owner, "elsewhere")
	expectBytes(t, "owner Unsubscribe", owner.control(codeUnsubscribe, unsubscribePayload(id, 5)), ackFrame(ieee, 5))

	anon := s.dial(ieee)
	expectError(t, ieee, "Unsubscribe without a token", anon.control(codeUnsubscribe, unsubscribePayload(id, 5)), textAuthRequired)
	expectError(t, ieee, "Subscribe to topic 0 without a token", anon.control(codeSubscribe, subscribePayload(0, 0, 4096, 5)), textAuthRequired)

	other := s.dial(ieee)
	expectBytes(t, "Authenticate", other.control(codeAuthenticate, []byte(secret+"-2")), authReply(true, "Authenticated"))
	expectError(t, ieee, "Unsubscribe without a consume right", other.control(codeUnsubscribe, unsubscribePayload(id, 5)),
		"Access denied: token:other may not consume from this topic")
}
