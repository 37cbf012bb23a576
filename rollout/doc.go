// Package rollout is staged rollouts: wave specifications, the frozen and
// hash-ordered device plan cut into IN-list hub jobs, the rollout state
// machine, halt rules with their plain-words verdicts, the worst case and
// the ETA, and the engine that stores rollouts and drives them.
//
// The planner, the state machine and the rules (plan.go, waves.go,
// state.go, rules.go, estimate.go) are pure: every input, including the
// current time, is passed in, so the engine can replay any step after a
// crash and get the same answer. The engine and its store (engine.go,
// drive.go, stages.go, ops.go, store.go) are not: they read the clock, the
// database and the hub.
// README.md in this directory explains the model and the decisions.
package rollout
