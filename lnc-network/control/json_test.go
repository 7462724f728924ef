package control

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestTopicJSONEncoding(t *testing.T) {
	cases := []struct {
		name string
		got  []byte
		want string
	}{
		{"Topic", Topic{ID: 1, Name: "my-events", CreatedAt: 1706918400, TopicEpoch: 1}.AppendTo(nil),
			`{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}`},
		{"TopicDeleted", TopicDeleted{ID: 7}.AppendTo(nil), `{"deleted":7}`},
		{"empty TopicList", TopicList{}.AppendTo(nil), `{"topics":[]}`},
		{"empty non-nil TopicList", TopicList{Topics: []Topic{}}.AppendTo(nil), `{"topics":[]}`},
		{"TopicList", TopicList{Topics: []Topic{
			{ID: 1, Name: "a", CreatedAt: 10, TopicEpoch: 1},
			{ID: 2, Name: "b-2", CreatedAt: 20, TopicEpoch: 1},
		}}.AppendTo(nil),
			`{"topics":[{"id":1,"name":"a","created_at":10,"topic_epoch":1},{"id":2,"name":"b-2","created_at":20,"topic_epoch":1}]}`},
		{"RetentionSet", RetentionSet{TopicID: 1, MaxAgeSecs: 86400, MaxBytes: 1 << 30}.AppendTo(nil),
			`{"max_age_secs":86400,"max_bytes":1073741824,"topic_id":1}`},
		{"TopicWithRetention", TopicWithRetention{
			Topic:      Topic{ID: 3, Name: "events", CreatedAt: 1706918400, TopicEpoch: 1},
			MaxAgeSecs: 86400,
		}.AppendTo(nil),
			`{"created_at":1706918400,"id":3,"max_age_secs":86400,"max_bytes":0,"name":"events","topic_epoch":1}`},
		{"max values", Topic{ID: 1<<32 - 1, CreatedAt: 1<<64 - 1, TopicEpoch: 1<<64 - 1}.AppendTo(nil),
			`{"created_at":18446744073709551615,"id":4294967295,"name":"","topic_epoch":18446744073709551615}`},
		// serde_json does not escape HTML characters; neither do we.
		{"no HTML escaping", Topic{Name: `<a&b>"\`}.AppendTo(nil),
			`{"created_at":0,"id":0,"name":"<a&b>\"\\","topic_epoch":0}`},
	}
	for _, c := range cases {
		if string(c.got) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, c.got, c.want)
		}
	}
}

func TestClusterStatusEncoding(t *testing.T) {
	leader := uint16(2)
	cluster := ClusterStatus{
		NodeID: 1, LeaderID: &leader, CurrentTerm: 5, NodeCount: 3, HealthyNodes: 2,
		QuorumAvailable: true,
		PeerStates:      map[string]string{"3": "Disconnected", "2": "Connected", "10": "Connected"},
	}
	want := `{"current_term":5,"healthy_nodes":2,"is_leader":false,"leader_id":2,"node_count":3,"node_id":1,"peer_states":{"10":"Connected","2":"Connected","3":"Disconnected"},"quorum_available":true}`
	if got := cluster.AppendTo(nil); string(got) != want {
		t.Errorf("cluster status:\n got %s\nwant %s", got, want)
	}
	noLeader := ClusterStatus{}
	want = `{"current_term":0,"healthy_nodes":0,"is_leader":false,"leader_id":null,"node_count":0,"node_id":0,"peer_states":{},"quorum_available":false}`
	if got := noLeader.AppendTo(nil); string(got) != want {
		t.Errorf("zero status:\n got %s\nwant %s", got, want)
	}
}

func TestJSONAppendKeepsPrefix(t *testing.T) {
	dst := make([]byte, 3, 256)
	copy(dst, "abc")
	out := TopicDeleted{ID: 9}.AppendTo(dst)
	if string(out) != `abc{"deleted":9}` {
		t.Errorf("got %q", out)
	}
	if &out[0] != &dst[0] {
		t.Error("AppendTo did not reuse dst's spare capacity")
	}
}

func TestTopicJSONDecodingDefaults(t *testing.T) {
	// The reference before topic_epoch existed: the epoch defaults to 1.
	v, err := DecodeTopic([]byte(`{"id":4,"name":"x","created_at":5}`))
	if err != nil || v != (Topic{ID: 4, Name: "x", CreatedAt: 5, TopicEpoch: 1}) {
		t.Errorf("no topic_epoch: %#v, %v", v, err)
	}
	v, err = DecodeTopic([]byte(`{"topic_epoch":null}`))
	if err != nil || v != (Topic{TopicEpoch: 1}) {
		t.Errorf("null topic_epoch: %#v, %v", v, err)
	}
	// Unknown keys, white space and any key order are fine.
	v, err = DecodeTopic([]byte(" {\"retention\":{\"max_age_secs\":1},\n \"topic_epoch\":3, \"name\":\"n\", \"id\":2, \"extra\":[1,2]} "))
	if err != nil || v != (Topic{ID: 2, Name: "n", TopicEpoch: 3}) {
		t.Errorf("unknown keys: %#v, %v", v, err)
	}
	// Keys are case-sensitive (encoding/json alone would accept "ID").
	v, err = DecodeTopic([]byte(`{"ID":9,"Name":"z"}`))
	if err != nil || v != (Topic{TopicEpoch: 1}) {
		t.Errorf("wrong-case keys: %#v, %v", v, err)
	}
	// A repeated key keeps its last value.
	v, err = DecodeTopic([]byte(`{"id":1,"id":2}`))
	if err != nil || v.ID != 2 {
		t.Errorf("repeated key: %#v, %v", v, err)
	}

	l, err := DecodeTopicList([]byte(`{}`))
	if err != nil || l.Topics == nil || len(l.Topics) != 0 {
		t.Errorf("missing topics: %#v, %v", l, err)
	}
	l, err = DecodeTopicList([]byte(`{"topics":[{"id":1,"name":"a","created_at":2}]}`))
	if err != nil || !reflect.DeepEqual(l.Topics, []Topic{{ID: 1, Name: "a", CreatedAt: 2, TopicEpoch: 1}}) {
		t.Errorf("list: %#v, %v", l, err)
	}

	s, err := DecodeClusterStatus([]byte(`{}`))
	want := ClusterStatus{NodeCount: 1, HealthyNodes: 1, QuorumAvailable: true, PeerStates: map[string]string{}}
	if err != nil || !reflect.DeepEqual(s, want) {
		t.Errorf("empty cluster status: %#v, %v", s, err)
	}
	s, err = DecodeClusterStatus([]byte(`{"leader_id":null,"peer_states":{"2":"Follower"},"is_leader":false,"node_id":1}`))
	if err != nil || s.LeaderID != nil || s.NodeID != 1 || s.PeerStates["2"] != "Follower" || s.Mode != "" {
		t.Errorf("cluster status: %#v, %v", s, err)
	}

	d, err := DecodeTopicDeleted([]byte(`{"deleted":12}`))
	if err != nil || d.ID != 12 {
		t.Errorf("deleted: %#v, %v", d, err)
	}
	r, err := DecodeRetentionSet([]byte(`{"max_age_secs":1,"max_bytes":2,"topic_id":3}`))
	if err != nil || r != (RetentionSet{TopicID: 3, MaxAgeSecs: 1, MaxBytes: 2}) {
		t.Errorf("retention: %#v, %v", r, err)
	}
	w, err := DecodeTopicWithRetention([]byte(`{"created_at":1,"id":2,"max_age_secs":3,"max_bytes":4,"name":"n","topic_epoch":1}`))
	if err != nil || w != (TopicWithRetention{Topic: Topic{ID: 2, Name: "n", CreatedAt: 1, TopicEpoch: 1}, MaxAgeSecs: 3, MaxBytes: 4}) {
		t.Errorf("topic with retention: %#v, %v", w, err)
	}
}

func TestTopicJSONDecodingErrors(t *testing.T) {
	malformedInputs := []string{
		``, `null`, `[]`, `"x"`, `{`, `{"id":1}x`,
		`{"id":-1}`, `{"id":4294967296}`, `{"id":1.5}`, `{"id":"1"}`, `{"name":5}`,
		`{"created_at":1e3}`, `{"topic_epoch":true}`,
	}
	for _, in := range malformedInputs {
		if _, err := DecodeTopic([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeTopic(%s) = %v, want ErrMalformed", in, err)
		}
	}
	for _, in := range []string{`{"topics":{}}`, `{"topics":[1]}`, `{"topics":[null]}`, `{"topics":[{"id":"x"}]}`} {
		if _, err := DecodeTopicList([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeTopicList(%s) = %v, want ErrMalformed", in, err)
		}
	}
	for _, in := range []string{`{"node_id":65536}`, `{"leader_id":-1}`, `{"peer_states":{"1":2}}`, `{"peer_states":[]}`, `{"is_leader":1}`, `{"mode":1}`} {
		if _, err := DecodeClusterStatus([]byte(in)); !errors.Is(err, ErrMalformed) {
			t.Errorf("DecodeClusterStatus(%s) = %v, want ErrMalformed", in, err)
		}
	}
	big := []byte(`{"name":"` + strings.Repeat("a", MaxJSONPayload) + `"}`)
	_, err := DecodeTopic(big)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("oversized JSON: %v, want ErrTooLarge", err)
	}
	var pe *PayloadError
	if errors.As(err, &pe) && (pe.Got != len(big) || pe.Code != CodeTopicResponse) {
		t.Errorf("oversized JSON error %#v", pe)
	}
	if _, err := DecodeClusterStatus([]byte(`{`)); err == nil || !strings.Contains(err.Error(), "ClusterStatusResponse") {
		t.Errorf("cluster status error does not name its code: %v", err)
	}
}

func TestJSONRoundTrips(t *testing.T) {
	leader := uint16(0)
	for _, v := range []ClusterStatus{
		StandaloneClusterStatus(),
		{NodeID: 65535, LeaderID: &leader, PeerStates: map[string]string{"1": "a\u2028b"}},
	} {
		back, err := DecodeClusterStatus(v.AppendTo(nil))
		if err != nil || !reflect.DeepEqual(back, v) {
			t.Errorf("%#v: round trip gave %#v, %v", v, back, err)
		}
	}
	list := TopicList{Topics: []Topic{{ID: 1, Name: "x", TopicEpoch: 1}, {ID: 2, Name: "é", CreatedAt: 9, TopicEpoch: 1}}}
	back, err := DecodeTopicList(list.AppendTo(nil))
	if err != nil || !reflect.DeepEqual(back, list) {
		t.Errorf("list round trip gave %#v, %v", back, err)
	}
	if !bytes.Contains(list.AppendTo(nil), []byte("é")) {
		t.Error("non-ASCII text was escaped")
	}
}
