// Package rollout is the pure core of staged rollouts: wave specifications,
// the frozen and hash-ordered device plan cut into IN-list hub jobs, the
// rollout state machine, halt rules with their plain-words verdicts, the
// worst case and the ETA.
//
// Nothing here reads a clock, a database or the network: every input,
// including the current time, is passed in, so the engine that persists and
// drives rollouts can replay any step after a crash and get the same answer.
// README.md in this directory explains the model and the decisions.
package rollout
