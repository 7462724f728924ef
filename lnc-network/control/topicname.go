package control

// MaxTopicNameLen is the longest topic name ValidateTopicName accepts, in
// bytes. The LWP specification sets this limit; the Rust server does not
// enforce any, so the limit and its error text are LANCE-Go's choice.
const MaxTopicNameLen = 255

// ValidateTopicName checks a topic name the way the reference server does
// before it creates a topic, plus our length limit. The checks run in this
// order, and the first failure is returned as a *NameError whose Error is
// the reply text:
//
//   - empty: ErrTopicNameRequired, text TopicNameRequired;
//   - a byte outside [A-Za-z0-9-]: ErrTopicNameInvalid, text
//     InvalidTopicNameChars(name);
//   - longer than MaxTopicNameLen bytes: ErrTopicNameTooLong, text
//     TopicNameTooLong(len(name)).
//
// Characters are checked before length so that every name the reference
// rejects gets the reference's own text.
func ValidateTopicName(name string) error {
	if name == "" {
		return &NameError{Name: name, Err: ErrTopicNameRequired}
	}
	for i := 0; i < len(name); i++ {
		if !topicNameByte(name[i]) {
			return &NameError{Name: name, Err: ErrTopicNameInvalid}
		}
	}
	if len(name) > MaxTopicNameLen {
		return &NameError{Name: name, Err: ErrTopicNameTooLong}
	}
	return nil
}

func topicNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}
