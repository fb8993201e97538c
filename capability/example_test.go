package capability_test

import (
	"fmt"

	"github.com/Masterminds/semver/v3"
	"github.com/duroworker/duroworker/capability"
)

// A worker on engine 0.2.0 lists the buckets it reads. Executions pinned to
// engine 0.3.0 (started by an upgraded worker) are not among them.
func Example() {
	engine := semver.MustParse("0.2.0")
	serves := capability.Serves{
		Orchestrations: map[string][]string{"billing": {"1.0.0", "1.1.0"}},
		Activities:     []string{"charge"},
		ReplayRange:    capability.UpTo(engine),
	}
	if err := serves.Validate(); err != nil {
		fmt.Println(err)
		return
	}
	for _, b := range serves.OrchestrationBuckets([]string{"0.1.0", "0.3.0"}) {
		fmt.Println(b)
	}
	fmt.Println(serves.ActivityBuckets())
	fmt.Println(serves.CanServe(capability.ExecutionBucket("billing", "1.1.0", "0.3.0")))

	b, _ := capability.ParseBucket("x:billing@1.1.0@0.1.0")
	fmt.Println(b.Kind, b.Name, b.Version, b.Engine)

	packed, _ := capability.Pack(engine)
	fmt.Println(packed, capability.Unpack(packed))
	// Output:
	// o:billing
	// v:billing@1.0.0
	// v:billing@1.1.0
	// x:billing@1.0.0@0.1.0
	// x:billing@1.1.0@0.1.0
	// [a:charge]
	// false
	// execution billing 1.1.0 0.1.0
	// 131072 0.2.0
}

func ExampleParseRange() {
	for _, s := range []string{"0.0.0..99.0.0", "0.0.0-99.0.0", "[0.1.0, 0.2.0]", "1-2-3"} {
		r, err := capability.ParseRange(s)
		fmt.Println(r, err)
	}
	// Output:
	// [0.0.0, 99.0.0] <nil>
	// [0.0.0, 99.0.0] <nil>
	// [0.1.0, 0.2.0] <nil>
	// [<nil>, <nil>] invalid version range "1-2-3": ambiguous hyphen; write MIN..MAX
}

func ExampleValidateName() {
	fmt.Println(capability.ValidateName("orchestration", "svc:billing@eu"))
	fmt.Println(capability.ValidateName("activity", "{p0}"))
	// Output:
	// <nil>
	// invalid name: activity name "{p0}" contains '{': names become part of Redis key names, where braces would change the cluster hash tag
}
