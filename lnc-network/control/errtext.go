package control

import (
	"net/netip"
	"strconv"
	"strings"
)

// This file holds every text the reference server puts in an ErrorResponse
// or an AuthenticateResponse, so that the wording lives in one place. The
// texts are copied from the reference and must not be reworded: tests and
// clients compare them. The one exception, marked below, is ours.

// Texts for topic administration (CreateTopic, CreateTopicWithRetention,
// GetTopic, Subscribe).
const (
	// TopicNameRequired answers a CreateTopic with an empty payload or an
	// empty name.
	TopicNameRequired = "Topic name required"
	// TopicNotFound answers GetTopic and Subscribe on an unknown topic.
	TopicNotFound = "Topic not found"
)

// Texts for ingest frames rejected before they are written.
const (
	// UnknownTopic answers an ingest to an unknown non-zero topic in
	// standalone mode.
	UnknownTopic = "Unknown topic"
	// UnknownTopicCluster is the cluster-mode variant of UnknownTopic. It
	// carries the FORWARD_FAILED marker, so the Rust client retries it.
	UnknownTopicCluster = "FORWARD_FAILED: Unknown topic (metadata convergence)"
	// AuthenticationRequired answers an ingest on a connection that has to
	// authenticate and has not.
	AuthenticationRequired = "Authentication required"
)

// Texts for request payloads that are too short. Each decoder attaches the
// right one to its *PayloadError; ReplyText retrieves it.
const (
	InvalidSetRetentionPayload = "Invalid set retention payload"                   // SetRetention < 20 bytes
	InvalidCreateTopicPayload  = "Invalid create topic payload"                    // CreateTopicWithRetention < 18 bytes
	InvalidPayloadLength       = "Invalid payload length"                          // CreateTopicWithRetention < 2+name_len+16
	InvalidSubscribePayload    = "Invalid subscribe payload"                       // Subscribe < 24 bytes
	InvalidUnsubscribePayload  = "Invalid unsubscribe payload"                     // Unsubscribe < 12 bytes
	InvalidCommitOffsetPayload = "Invalid commit offset payload"                   // CommitOffset < 20 bytes
	FetchPayloadRequired       = "Fetch request payload required"                  // Fetch, empty
	FetchPayloadTooSmall       = "Protocol error: Fetch request payload too small" // Fetch, 1 to 15 bytes
)

// Texts for commands a server refuses whatever their payload.
const (
	// InvalidClientCommand answers an unknown code or a code only a server
	// may send.
	InvalidClientCommand = "Invalid client command"
	// AuthHandledAtConnectionLevel answers an AuthenticateResponse sent by
	// a client.
	AuthHandledAtConnectionLevel = "Authentication handled at connection level"
	// RateLimitExceeded answers a Fetch when the (optional) consumer rate
	// limiter has no capacity left.
	RateLimitExceeded = "Rate limit exceeded"
)

// Messages of an AuthenticateResponse (0x09). They follow the success byte;
// they are not ErrorResponse texts.
const (
	AuthReplyOK           = "Authenticated"          // success byte 1
	AuthReplyNoToken      = "No token provided"      // empty Authenticate payload
	AuthReplyBadEncoding  = "Invalid token encoding" // token is not UTF-8
	AuthReplyInvalidToken = "Invalid token"          // token not configured
)

// Cluster-mode markers. The Rust client parses NotLeaderPrefix and retries
// any error that contains ForwardFailedMarker, so both are a wire contract.
const (
	// NotLeaderMarker starts every NOT_LEADER reply; the Rust client treats
	// any error that starts with it as a redirect.
	NotLeaderMarker = "NOT_LEADER:"
	// NotLeaderPrefix starts the reply of a follower that cannot forward a
	// write; the leader's ip:port follows.
	NotLeaderPrefix = "NOT_LEADER: redirect to "
	// LeaderUnknown is the reply of a follower that knows no leader.
	LeaderUnknown = "NOT_LEADER: leader unknown"
	// ForwardFailedPrefix starts the reply when forwarding to the leader,
	// waiting for quorum or waiting for the leader to be ready fails.
	ForwardFailedPrefix = "FORWARD_FAILED: "
	// ForwardFailedMarker is what the Rust client looks for, anywhere in
	// the text, to decide that an error is retryable.
	ForwardFailedMarker = "FORWARD_FAILED"
	// LeaderNotReady is the FORWARD_FAILED detail sent while a new leader
	// is still catching up.
	LeaderNotReady = "Leader not ready (apply/metadata catch-up)"
)

// TopicExists is the reply to a CreateTopic (or CreateTopicWithRetention)
// naming an existing topic, in standalone mode: "Topic '<name>' already
// exists".
func TopicExists(name string) string {
	return "Topic '" + name + "' already exists"
}

// InvalidTopicNameChars is the reply to a topic name with a character
// outside [A-Za-z0-9-].
func InvalidTopicNameChars(name string) string {
	return "Invalid data: Topic name '" + name +
		"' contains invalid characters. Only alphanumeric characters " +
		"(a-z, A-Z, 0-9) and dashes (-) are allowed"
}

// TopicNameTooLong is the reply to a topic name longer than
// MaxTopicNameLen bytes. This text is LANCE-Go's own: the Rust server sets
// no length limit and so has no such message. It keeps the "Invalid data: "
// prefix of the other name errors.
func TopicNameTooLong(n int) string {
	return "Invalid data: Topic name is " + strconv.Itoa(n) +
		" bytes long; at most " + strconv.Itoa(MaxTopicNameLen) +
		" bytes are allowed"
}

// FetchTopicNotFound is the reply to a Fetch on an unknown topic:
// "Topic <id> not found".
func FetchTopicNotFound(topicID uint32) string {
	return "Topic " + strconv.FormatUint(uint64(topicID), 10) + " not found"
}

// ConfigTopicNotFound is the reply to a DeleteTopic or SetRetention on an
// unknown topic: "Configuration error: Topic <id> not found".
func ConfigTopicNotFound(topicID uint32) string {
	return "Configuration error: " + FetchTopicNotFound(topicID)
}

// NotLeader is the reply of a follower that redirects the client to the
// leader at addr (ip:port).
func NotLeader(addr string) string { return NotLeaderPrefix + addr }

// ForwardFailed is a FORWARD_FAILED reply with the given detail.
func ForwardFailed(detail string) string { return ForwardFailedPrefix + detail }

// QuorumNotReached is the FORWARD_FAILED reply sent instead of an ack when
// a cluster write does not reach quorum in time.
func QuorumNotReached(required, got int) string {
	return ForwardFailed("Quorum not reached - required " + strconv.Itoa(required) +
		" ACKs, got " + strconv.Itoa(got))
}

// IsNotLeader reports whether text is a NOT_LEADER reply of any kind, a
// redirect or LeaderUnknown: whether it starts with NotLeaderMarker.
func IsNotLeader(text string) bool { return strings.HasPrefix(text, NotLeaderMarker) }

// ParseNotLeader extracts the leader address from a NOT_LEADER redirect the
// way the Rust client does. The text must start with NotLeaderPrefix and
// must not mention "leader unknown"; the rest, with surrounding white space
// removed, must be a numeric ip:port ("10.0.0.2:1992", "[::1]:1992"). A
// host name is not accepted, because the Rust client parses a SocketAddr.
// ok is false for every other text; use IsNotLeader to recognise a
// redirect without a usable address.
func ParseNotLeader(text string) (addr string, ok bool) {
	rest, found := strings.CutPrefix(text, NotLeaderPrefix)
	if !found || strings.Contains(text, "leader unknown") {
		return "", false
	}
	addr = strings.TrimSpace(rest)
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return "", false
	}
	return addr, true
}

// IsForwardFailed reports whether text contains ForwardFailedMarker
// anywhere, which is the Rust client's test for a retryable server error.
func IsForwardFailed(text string) bool {
	return strings.Contains(text, ForwardFailedMarker)
}
