package control

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// MaxJSONPayload bounds the JSON payloads the decoders accept. It is the
// server's default frame payload limit; a longer payload matches
// ErrTooLarge and is not parsed.
const MaxJSONPayload = 16 << 20

// Topic is the TopicResponse (0x80) answering CreateTopic and GetTopic, and
// one entry of a TopicList. As a reply it is encoded with sorted keys:
//
//	{"created_at":1706918400,"id":1,"name":"my-events","topic_epoch":1}
type Topic struct {
	ID   uint32
	Name string
	// CreatedAt is the creation time in seconds since the Unix epoch.
	CreatedAt uint64
	// TopicEpoch is 1 in every reference reply; a decoder that finds no
	// topic_epoch key sets it to 1, as the Rust client does.
	TopicEpoch uint64
}

type topicJSON struct {
	CreatedAt  uint64 `json:"created_at"`
	ID         uint32 `json:"id"`
	Name       string `json:"name"`
	TopicEpoch uint64 `json:"topic_epoch"`
}

// topicEntryJSON is a list entry; the reference serialises a struct there,
// so the keys follow its field order instead of the alphabet. It must keep
// the fields of Topic in the same order, which TopicList.AppendTo relies on
// (a mismatch does not compile).
type topicEntryJSON struct {
	ID         uint32 `json:"id"`
	Name       string `json:"name"`
	CreatedAt  uint64 `json:"created_at"`
	TopicEpoch uint64 `json:"topic_epoch"`
}

// AppendTo appends the JSON object to dst.
func (t Topic) AppendTo(dst []byte) []byte {
	return appendJSON(dst, topicJSON{CreatedAt: t.CreatedAt, ID: t.ID, Name: t.Name, TopicEpoch: t.TopicEpoch})
}

// DecodeTopic decodes a Topic reply. See the package documentation for the
// rules all JSON decoders share.
func DecodeTopic(p []byte) (Topic, error) {
	o, err := parseObject(CodeTopicResponse, p)
	if err != nil {
		return Topic{}, err
	}
	return o.topic()
}

func (o jsonObject) topic() (Topic, error) {
	t := Topic{TopicEpoch: 1}
	err := firstError(
		o.field("id", &t.ID),
		o.field("name", &t.Name),
		o.field("created_at", &t.CreatedAt),
		o.field("topic_epoch", &t.TopicEpoch),
	)
	return t, err
}

// TopicDeleted is the TopicResponse answering DeleteTopic: {"deleted":id}.
type TopicDeleted struct {
	ID uint32
}

type topicDeletedJSON struct {
	Deleted uint32 `json:"deleted"`
}

// AppendTo appends the JSON object to dst.
func (t TopicDeleted) AppendTo(dst []byte) []byte {
	return appendJSON(dst, topicDeletedJSON{Deleted: t.ID})
}

// DecodeTopicDeleted decodes a TopicDeleted reply.
func DecodeTopicDeleted(p []byte) (TopicDeleted, error) {
	o, err := parseObject(CodeTopicResponse, p)
	if err != nil {
		return TopicDeleted{}, err
	}
	var t TopicDeleted
	err = o.field("deleted", &t.ID)
	return t, err
}

// TopicList is the TopicResponse answering ListTopics:
// {"topics":[{"id":…,"name":…,"created_at":…,"topic_epoch":…},…]}. The
// entries' keys are in that order, not sorted, and the topics come in no
// particular order. An empty or nil list is encoded as {"topics":[]}.
type TopicList struct {
	Topics []Topic
}

type topicListJSON struct {
	Topics []topicEntryJSON `json:"topics"`
}

// AppendTo appends the JSON object to dst.
func (l TopicList) AppendTo(dst []byte) []byte {
	v := topicListJSON{Topics: make([]topicEntryJSON, len(l.Topics))}
	for i, t := range l.Topics {
		v.Topics[i] = topicEntryJSON(t) // same fields in the same order as Topic
	}
	return appendJSON(dst, v)
}

// DecodeTopicList decodes a TopicList reply. A missing or null "topics"
// gives an empty list; Topics is never nil on success. Each entry must be
// an object and is decoded like DecodeTopic.
func DecodeTopicList(p []byte) (TopicList, error) {
	o, err := parseObject(CodeTopicResponse, p)
	if err != nil {
		return TopicList{}, err
	}
	var entries []jsonObject
	if err := o.field("topics", &entries); err != nil {
		return TopicList{}, err
	}
	l := TopicList{Topics: make([]Topic, len(entries))}
	for i, e := range entries {
		if e.members == nil {
			return TopicList{}, o.malformed("topics[" + strconv.Itoa(i) + "] is not an object")
		}
		e.code, e.size = o.code, o.size
		if l.Topics[i], err = e.topic(); err != nil {
			return TopicList{}, err
		}
	}
	return l, nil
}

// RetentionSet is the TopicResponse answering SetRetention:
// {"max_age_secs":…,"max_bytes":…,"topic_id":…}.
type RetentionSet struct {
	TopicID    uint32
	MaxAgeSecs uint64
	MaxBytes   uint64
}

type retentionSetJSON struct {
	MaxAgeSecs uint64 `json:"max_age_secs"`
	MaxBytes   uint64 `json:"max_bytes"`
	TopicID    uint32 `json:"topic_id"`
}

// AppendTo appends the JSON object to dst.
func (r RetentionSet) AppendTo(dst []byte) []byte {
	return appendJSON(dst, retentionSetJSON{MaxAgeSecs: r.MaxAgeSecs, MaxBytes: r.MaxBytes, TopicID: r.TopicID})
}

// DecodeRetentionSet decodes a RetentionSet reply.
func DecodeRetentionSet(p []byte) (RetentionSet, error) {
	o, err := parseObject(CodeTopicResponse, p)
	if err != nil {
		return RetentionSet{}, err
	}
	var r RetentionSet
	err = firstError(
		o.field("topic_id", &r.TopicID),
		o.field("max_age_secs", &r.MaxAgeSecs),
		o.field("max_bytes", &r.MaxBytes),
	)
	return r, err
}

// TopicWithRetention is the TopicResponse answering
// CreateTopicWithRetention: the Topic keys plus the two retention values,
// at the top level and sorted: {"created_at","id","max_age_secs",
// "max_bytes","name","topic_epoch"}. (The Rust client looks for a nested
// "retention" object instead, never finds it, and reports no retention.)
type TopicWithRetention struct {
	Topic
	MaxAgeSecs uint64
	MaxBytes   uint64
}

type topicWithRetentionJSON struct {
	CreatedAt  uint64 `json:"created_at"`
	ID         uint32 `json:"id"`
	MaxAgeSecs uint64 `json:"max_age_secs"`
	MaxBytes   uint64 `json:"max_bytes"`
	Name       string `json:"name"`
	TopicEpoch uint64 `json:"topic_epoch"`
}

// AppendTo appends the JSON object to dst.
func (t TopicWithRetention) AppendTo(dst []byte) []byte {
	return appendJSON(dst, topicWithRetentionJSON{
		CreatedAt:  t.CreatedAt,
		ID:         t.ID,
		MaxAgeSecs: t.MaxAgeSecs,
		MaxBytes:   t.MaxBytes,
		Name:       t.Name,
		TopicEpoch: t.TopicEpoch,
	})
}

// DecodeTopicWithRetention decodes a TopicWithRetention reply.
func DecodeTopicWithRetention(p []byte) (TopicWithRetention, error) {
	o, err := parseObject(CodeTopicResponse, p)
	if err != nil {
		return TopicWithRetention{}, err
	}
	t, err := o.topic()
	if err != nil {
		return TopicWithRetention{}, err
	}
	r := TopicWithRetention{Topic: t}
	err = firstError(
		o.field("max_age_secs", &r.MaxAgeSecs),
		o.field("max_bytes", &r.MaxBytes),
	)
	return r, err
}

// ClusterStatus is the payload of a ClusterStatusResponse (0x81), the
// reply to GetClusterStatus. Keys are sorted; "mode" appears only in
// standalone mode.
type ClusterStatus struct {
	NodeID   uint16
	IsLeader bool
	// LeaderID is nil when no leader is known; it is encoded as null.
	LeaderID    *uint16
	CurrentTerm uint64
	// NodeCount counts this node and its peers.
	NodeCount uint64
	// HealthyNodes counts this node and its connected peers.
	HealthyNodes    uint64
	QuorumAvailable bool
	// PeerStates maps a peer's node id, in decimal, to the name of its
	// state. A nil map is encoded as {}.
	PeerStates map[string]string
	// Mode is "standalone" for a standalone server and empty, which
	// omits the key, in cluster mode.
	Mode string
}

// ModeStandalone is the Mode of a standalone server.
const ModeStandalone = "standalone"

// StandaloneClusterStatus returns the status a standalone server reports.
// Encoded, it is exactly
//
//	{"current_term":0,"healthy_nodes":1,"is_leader":true,"leader_id":0,"mode":"standalone","node_count":1,"node_id":0,"peer_states":{},"quorum_available":true}
func StandaloneClusterStatus() ClusterStatus {
	leader := uint16(0)
	return ClusterStatus{
		NodeID:          0,
		IsLeader:        true,
		LeaderID:        &leader,
		CurrentTerm:     0,
		NodeCount:       1,
		HealthyNodes:    1,
		QuorumAvailable: true,
		PeerStates:      map[string]string{},
		Mode:            ModeStandalone,
	}
}

type clusterStatusJSON struct {
	CurrentTerm     uint64            `json:"current_term"`
	HealthyNodes    uint64            `json:"healthy_nodes"`
	IsLeader        bool              `json:"is_leader"`
	LeaderID        *uint16           `json:"leader_id"`
	Mode            string            `json:"mode,omitempty"`
	NodeCount       uint64            `json:"node_count"`
	NodeID          uint16            `json:"node_id"`
	PeerStates      map[string]string `json:"peer_states"`
	QuorumAvailable bool              `json:"quorum_available"`
}

// AppendTo appends the JSON object to dst. encoding/json writes map keys
// sorted, which is also the reference order for peer_states.
func (s ClusterStatus) AppendTo(dst []byte) []byte {
	peers := s.PeerStates
	if peers == nil {
		peers = map[string]string{}
	}
	return appendJSON(dst, clusterStatusJSON{
		CurrentTerm:     s.CurrentTerm,
		HealthyNodes:    s.HealthyNodes,
		IsLeader:        s.IsLeader,
		LeaderID:        s.LeaderID,
		Mode:            s.Mode,
		NodeCount:       s.NodeCount,
		NodeID:          s.NodeID,
		PeerStates:      peers,
		QuorumAvailable: s.QuorumAvailable,
	})
}

// DecodeClusterStatus decodes a ClusterStatusResponse payload. Missing keys
// take the Rust client's defaults: node_count and healthy_nodes 1,
// quorum_available true, everything else zero, leader_id nil. PeerStates
// is never nil on success; its values must be strings.
func DecodeClusterStatus(p []byte) (ClusterStatus, error) {
	o, err := parseObject(CodeClusterStatusResponse, p)
	if err != nil {
		return ClusterStatus{}, err
	}
	s := ClusterStatus{NodeCount: 1, HealthyNodes: 1, QuorumAvailable: true}
	err = firstError(
		o.field("node_id", &s.NodeID),
		o.field("is_leader", &s.IsLeader),
		o.field("leader_id", &s.LeaderID),
		o.field("current_term", &s.CurrentTerm),
		o.field("node_count", &s.NodeCount),
		o.field("healthy_nodes", &s.HealthyNodes),
		o.field("quorum_available", &s.QuorumAvailable),
		o.field("peer_states", &s.PeerStates),
		o.field("mode", &s.Mode),
	)
	if err != nil {
		return ClusterStatus{}, err
	}
	if s.PeerStates == nil {
		s.PeerStates = map[string]string{}
	}
	return s, nil
}

// appendJSON appends the compact JSON encoding of v to dst, without the
// HTML escaping json.Marshal does (serde_json does none) and without the
// newline json.Encoder adds.
func appendJSON(dst []byte, v any) []byte {
	buf := bytes.NewBuffer(dst)
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// The reply types hold only integers, strings, booleans and maps
		// of strings, which always encode.
		panic("control: encoding JSON reply: " + err.Error())
	}
	out := buf.Bytes()
	return out[:len(out)-1]
}

// jsonObject is a decoded JSON object whose members are parsed on demand.
// Keys are matched exactly (encoding/json alone would ignore case) and a
// repeated key keeps its last value, as serde_json does.
type jsonObject struct {
	members map[string]json.RawMessage
	code    Code
	size    int
}

// UnmarshalJSON lets []jsonObject decode list entries.
func (o *jsonObject) UnmarshalJSON(b []byte) error {
	return json.Unmarshal(b, &o.members)
}

func parseObject(code Code, p []byte) (jsonObject, error) {
	o := jsonObject{code: code, size: len(p)}
	if len(p) > MaxJSONPayload {
		return o, &PayloadError{Code: code, Got: len(p), Err: ErrTooLarge,
			Detail: strconv.Itoa(len(p)) + " bytes of JSON exceed the limit of " + strconv.Itoa(MaxJSONPayload)}
	}
	if err := json.Unmarshal(p, &o.members); err != nil {
		return o, o.malformed("invalid JSON: " + err.Error())
	}
	if o.members == nil {
		return o, o.malformed("JSON value is not an object")
	}
	return o, nil
}

// field decodes member key into dst. A missing key or a null value leaves
// dst as it is, which is how defaults are applied; a value of the wrong
// type, or out of dst's range, is an error.
func (o jsonObject) field(key string, dst any) error {
	raw, ok := o.members[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return o.malformed("key " + strconv.Quote(key) + ": " + err.Error())
	}
	return nil
}

func (o jsonObject) malformed(detail string) error {
	return malformed(o.code, o.size, "", detail)
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
