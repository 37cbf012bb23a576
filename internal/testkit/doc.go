// Package testkit holds the helpers that tests in several packages need
// alike: a Buffer that concurrent writers may share (logs, a child process's
// output), a Clock that moves only when a test tells it to, and a Browser,
// an HTTP client that keeps cookies the way one browser profile does.
//
// Only tests import it. It imports nothing of hubjobs, so a test in any
// package — hub, auth and audit included, which import nothing internal —
// may use it without bending the dependency direction of docs/contract.md.
// A package keeps its own test helpers only where they speak its language
// (a fake IdP flow, a portal fixture); anything generic belongs here once.
package testkit
