// Package healthmonitor is the versioned health monitor of duroworker's
// versioning guide, in Go: a long-running orchestration that checks a target,
// sleeps on a durable timer and continues as new, upgraded twice while
// instances keep running.
//
// # Code organization
//
// The orchestration has one stable name, [Name], that never changes across
// versions, and one function per version, suffixed with the version:
//
//	Monitor        1.0.0  the original
//	Monitor_1_0_1  1.0.1  hot fix: health check with retries and a 30 s timeout
//	Monitor_1_0_2  1.0.2  timer interval 5 times longer (60 s becomes 300 s)
//
// Every trace starts with the version ("[v1.0.2] Starting health check
// cycle"), so logs tell at a glance which code ran.
//
// # Registration
//
// [Register] registers the versions in increasing order: 1.0.0 with
// engine.RegisterTyped (which uses engine.DefaultVersion) and the later ones
// with engine.RegisterVersionedTyped. Its upTo argument stops at a version, so
// that a test or `duroworker dev` can run an "old deployment" next to an
// "upgraded deployment". The default policy is Latest: new instances and every
// continue-as-new run the highest registered version. An
// engine.Exact policy (OrchestrationRegistryBuilder.SetPolicy) pins them
// instead.
//
// # Upgrade timing
//
// A version is chosen only when an execution starts. A running execution is
// never switched to other code: it is replayed with exactly the version
// recorded in its history. Each cycle of the monitor is one execution that
// ends in continue-as-new, so an instance upgrades at its next continue-as-new
// after a worker with the new version takes it, not when that worker starts.
// client.GetInstanceInfo reports the version of the current execution, and
// [Watch] with [VerifyUpgrade] check that the version changes only together
// with the execution id.
package healthmonitor
