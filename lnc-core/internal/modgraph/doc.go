// Package modgraph holds no code: its test checks that the modules of the
// workspace depend on each other only in the directions ARCHITECTURE.md
// allows (core ← io, network ← replication ← lance; client on core and
// network only; tools on client), both in go.mod files and in imports. It
// lives in lnc-core because lnc-core is the one module every build has.
package modgraph
