// Package security decides who a client connection is and what it may do:
// the TLS listener configuration (with optional client certificates), the
// principal a connection speaks for, the tokens of the Authenticate command
// (0x08) and the per-topic access rules.
//
// The server uses it in three steps:
//
//  1. ServerTLS turns config.TLS into a *tls.Config for the listener;
//     after the handshake PrincipalFromConn names the client from its
//     verified certificate (or Anonymous).
//  2. Authorizer.Authenticate handles the token command; a valid token makes
//     the connection authenticated and replaces its principal with the
//     token's ("token:<name>").
//  3. Authorizer.Allow is asked before every request that touches a topic,
//     and Authorizer.Visible filters ListTopics.
//
// docs/security.md describes the configuration and the behaviour for
// operators.
package security
