// Package hubsim is a wire-faithful simulator of Azure IoT Hub's
// scheduled-jobs data plane (PUT/GET /jobs/v2/{id}, POST …/cancel, GET
// /jobs/v2/query, POST /devices/query over devices.jobs), for tests, the
// demo and benchmarks. It follows docs/iothub.md
// (the wire truth), not the swagger: bare-array query bodies, paging through
// x-ms-* headers, a minimal 200 body on create, "cancelled" jobs but
// "canceled" devices, both error body formats, 411 from HTTP.sys.
//
// It deliberately shares no type with package hub: it has its own wire
// structs and its own SAS verifier, so a client bug cannot hide behind a
// shared definition.
//
// Job state is a pure function of the injected Clock (see Clock): no
// goroutine runs between requests, and a test moves a job from queued to
// completed by advancing the clock. Statistics and per-device records are
// derived from the same per-device start and finish times, so they agree at
// every instant.
//
// Choices where the real service is unverified are documented where they
// are made and summarised in README.md.
package hubsim
